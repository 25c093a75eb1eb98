"""``adam stop``: unload a model from a running ``adam serve`` (or Ollama), as
``ollama stop``."""

from __future__ import annotations

import argparse
from typing import Any

from adam_integrations.cli.common import running_server


def add(commands: Any) -> None:
    stop = commands.add_parser("stop", help="unload a model from a running adam serve (or "
                                            "Ollama), as `ollama stop`")
    stop.add_argument("model")
    stop.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    with running_server() as client:
        client.generate(model=args.model, prompt="", keep_alive=0)
    return 0
