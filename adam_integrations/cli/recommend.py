"""``adam recommend``: the Qwen3 models for this machine ranked, with their memory fit;
or, with ``--engine`` and ``--gpus``, a deployment plan on a serving engine."""

from __future__ import annotations

import argparse
from typing import Any

from adam_integrations.core.errors import InvalidRequestError


def add(commands: Any) -> None:
    recommend = commands.add_parser(
        "recommend", help="rank the Qwen3 models for this machine, with their memory fit")
    recommend.add_argument("--backend", default=None,
                           help="llamacpp, huggingface or ollama (default: this machine's)")
    recommend.add_argument("--domain", default=None, help="general, code, docker, ...")
    recommend.add_argument("--context", type=int, default=8192, help="context tokens wanted")
    recommend.add_argument("--all", action="store_true", help="every option, not the top 12")
    recommend.add_argument("--min-speed", type=float, default=None,
                           help="tokens/s the pick must reach (estimated; default 10)")
    recommend.add_argument("--hardware", default=None, metavar="PROFILE.json",
                           help="plan for the machine this JSON profile describes instead "
                                "of this one (see HardwareProfile.from_file)")
    recommend.add_argument("--engine", default=None, choices=["vllm", "sglang", "llama-server"],
                           help="plan a deployment on a serving engine instead (with --gpus)")
    recommend.add_argument("--gpus", default=None, metavar="NxMEM",
                           help="GPUs per node x memory each, e.g. 8x80GB (with --engine)")
    recommend.add_argument("--nodes", type=int, default=1, help="nodes (with --engine)")
    recommend.add_argument("--concurrency", type=int, default=1,
                           help="sequences to serve at once (with --engine)")
    recommend.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.catalog.selection import MIN_SPEED, default_backend, recommend
    from adam_integrations.core.hardware import HardwareProfile

    if args.engine or args.gpus:
        return plan(args)
    hardware = (HardwareProfile.from_file(args.hardware) if args.hardware
                else HardwareProfile.detect())
    backend = args.backend or default_backend(hardware)
    if backend not in ("llamacpp", "huggingface", "ollama"):
        raise InvalidRequestError(f"--backend {backend!r}: use llamacpp, huggingface or ollama")
    min_speed = MIN_SPEED if args.min_speed is None else args.min_speed
    result = recommend(hardware, backend=backend, domain=args.domain, context=args.context,
                       min_speed=min_speed)
    print(f"pick: {result.explanation}\n")
    # The pick first, then what fits and is fast enough (largest first), then what fits
    # but is slower (fastest first), then what is tight, then what does not fit.
    ranked = sorted((o for o in result.options if o is not result.choice), key=lambda o: (
        not o.fits, not o.fast_enough(min_speed), o.fit == "tight",
        -o.model.parameters if o.fast_enough(min_speed) else -(o.tokens_per_second or 0),
        -o.estimate.weights))
    if result.choice is not None:
        ranked.insert(0, result.choice)
    for option in ranked if args.all else ranked[:12]:
        mark = "*" if result.choice is option else " "
        print(f"{mark} {option.line()}")
    return 0


def plan(args: argparse.Namespace) -> int:
    """``--engine ENGINE --gpus NxMEM``: how to serve each model on that engine."""
    from adam_integrations.catalog.deployment import plan_deployment

    if not (args.engine and args.gpus):
        raise InvalidRequestError("a deployment plan needs both --engine and --gpus, e.g. "
                                  "adam recommend --engine vllm --gpus 8x80GB")
    plans = plan_deployment(args.engine, args.gpus, nodes=args.nodes, context=args.context,
                            concurrency=args.concurrency)
    print(f"{args.engine} on {args.nodes} node(s) of {args.gpus}, {args.context:,}-token "
          f"context, {args.concurrency} at once:\n")
    for option in plans:
        mark = "*" if option.fits and option.meets_concurrency else " " if option.fits else "x"
        print(f"{mark} {option.describe()}")
        if option.command:
            print(f"    {option.command}")
        for note in option.notes if option.fits else []:
            print(f"    note: {note}")
    return 0
