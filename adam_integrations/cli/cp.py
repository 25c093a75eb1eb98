"""``adam cp``: another name for a model, as ``ollama cp``."""

from __future__ import annotations

import argparse
from typing import Any


def add(commands: Any) -> None:
    copy = commands.add_parser("cp", help="another name for a model, as `ollama cp`")
    copy.add_argument("source")
    copy.add_argument("destination")
    copy.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.server.models import ServedModels

    ServedModels().copy(args.source, args.destination)
    print(f"copied '{args.source}' to '{args.destination}'")
    return 0
