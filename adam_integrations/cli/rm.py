"""``adam rm``: remove a model ``adam create`` made, or a name ``adam cp`` made (model
files are never deleted)."""

from __future__ import annotations

import argparse
from typing import Any


def add(commands: Any) -> None:
    remove = commands.add_parser("rm", help="remove a model adam create made, or a name "
                                            "adam cp made (model files are never deleted)")
    remove.add_argument("model", nargs="+")
    remove.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.server.models import ServedModels

    models = ServedModels()
    for name in args.model:
        models.delete(name)
        print(f"deleted '{name}'")
    return 0
