"""``adam ps``: the models a running ``adam serve`` (or Ollama) holds, as ``ollama ps``."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from adam_integrations.cli.common import ago, running_server, size, table


def add(commands: Any) -> None:
    running = commands.add_parser("ps", help="models a running adam serve (or Ollama) holds "
                                             "in memory, as `ollama ps`")
    running.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    with running_server() as client:
        models = client.ps().models
    now = datetime.now(timezone.utc)
    table(("NAME", "ID", "SIZE", "PROCESSOR", "UNTIL"), [
        (model.model or model.name or "", (model.digest or "")[:12], size(model.size or 0),
         "100% GPU" if model.size_vram else "100% CPU",
         "forever" if model.expires_at is None or (model.expires_at - now).days > 365
         else ago(model.expires_at, future=True))
        for model in models])
    return 0
