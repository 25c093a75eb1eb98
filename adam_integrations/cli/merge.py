"""``adam merge``: a LoRA adapter merged into its base, for engines that take no adapters."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from adam_integrations.cli.common import add_destination


def add(commands: Any) -> None:
    merge = commands.add_parser(
        "merge", help="merge a LoRA adapter into its base: a checkpoint for adam convert / "
                      "quantize, or --name into Ollama's store")
    merge.add_argument("base", help="the model the adapter was trained on (a checkpoint "
                                    "folder, an hf: repository, a catalog name or a GGUF)")
    merge.add_argument("adapter", help="the PEFT adapter folder (adam tune's output)")
    add_destination(merge, output="the checkpoint folder to write (new; default "
                                  "<base>-merged)",
                    name="also convert it to a GGUF as this model in Ollama's store",
                    either=False)
    merge.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.tools.merge import merge

    done = merge(args.base, args.adapter, output=args.output, name=args.name,
                 progress=sys.stderr.isatty())
    if done.path is not None:
        print(f"merged: {done.path} ({done.seconds:.1f} s); adam convert and adam quantize "
              "take it")
    if done.ollama_name:
        print(f"  Ollama model {done.ollama_name}")
    return 0
