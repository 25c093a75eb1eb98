"""``adam prune``: a smaller model cut by measured importance (blocks and MLP channels)."""

from __future__ import annotations

import argparse
from typing import Any


def add(commands: Any) -> None:
    prune = commands.add_parser(
        "prune", help="cut a smaller model from one by measured importance: whole blocks "
                      "(ShortGPT) and MLP channels (Minitron); then adam distill recovers")
    prune.add_argument("model", help="the model to prune (a checkpoint folder, an hf: "
                                     "repository, a catalog name or a GGUF)")
    prune.add_argument("--calibration", required=True,
                       help="a text file the importance is measured on")
    depth = prune.add_mutually_exclusive_group()
    depth.add_argument("--drop-layers", type=int, default=None, help="blocks to drop")
    depth.add_argument("--layer-ratio", type=float, default=None,
                       help="the share of blocks to drop, e.g. 0.25")
    prune.add_argument("--mlp-ratio", type=float, default=None,
                       help="the share of every block's MLP channels to drop, e.g. 0.25")
    prune.add_argument("-o", "--output", default=None,
                       help="the checkpoint folder to write (new; default <model>-pruned)")
    prune.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.tools.prune import prune

    done = prune(args.model, args.calibration, drop_layers=args.drop_layers,
                 layer_ratio=args.layer_ratio, mlp_ratio=args.mlp_ratio, output=args.output)
    print("block  importance (1 - cos(input, output) on the calibration text)")
    for index, value in enumerate(done.importance):
        print(f"{index:>5}  {value:.4f}{'  dropped' if index in done.dropped else ''}")
    print(f"pruned: {done.path} ({done.parameters_before / 1e6:,.1f}M -> "
          f"{done.parameters_after / 1e6:,.1f}M parameters; MLP {done.intermediate_before} -> "
          f"{done.intermediate_after} channels; {done.seconds:.1f} s)")
    return 0
