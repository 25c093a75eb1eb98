"""``adam show``: what a model is and where it lives."""

from __future__ import annotations

import argparse
from typing import Any

from adam_integrations.cli.common import BACKEND_HELP
from adam_integrations.manager import ModelManager


def add(commands: Any) -> None:
    show = commands.add_parser("show", help="show what a model is and where it lives")
    show.add_argument("model", nargs="?", default=None)
    show.add_argument("--embedding", action="store_true", help="default to the embedder")
    show.add_argument("--backend", default="auto", help=BACKEND_HELP)
    show.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    manager = ModelManager(model_type=args.backend, model=None if args.embedding else args.model,
                           embedding_model=args.model if args.embedding else None)
    backend = manager.embedder if args.embedding else manager.backend
    info = backend.info()
    rows = {
        "name": info.name, "backend": info.backend, "family": info.family,
        "parameters": f"{info.parameter_count:,}" if info.parameter_count else None,
        "context window": info.context_window, "embedding dim": info.embedding_dimension,
        "capabilities": ", ".join(info.capabilities), "format": info.format,
        "device": info.device, "dtype": info.dtype, "path": info.path,
        "why": manager.embedding_explanation if args.embedding else manager.explanation,
    }
    for key, value in rows.items():
        if value is not None:
            print(f"  {key:<15} {value}")
    return 0
