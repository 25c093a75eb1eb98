"""``adam list`` / ``adam ls``: the models you can run by name, as ``ollama list``."""

from __future__ import annotations

import argparse
from typing import Any

from adam_integrations.cli.common import ago, size, table


def add(commands: Any) -> None:
    listing = commands.add_parser("list", aliases=["ls"],
                                  help="models you can run by name, as `ollama list`")
    listing.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.server.models import ServedModels
    from adam_integrations.server.serving import stored_model

    rows = []
    for name, source in ServedModels().listed():
        try:
            stored = stored_model(name, source)
        except OSError:  # removed meanwhile
            continue
        rows.append((name, stored.digest[:12], size(stored.size), ago(stored.modified_at)))
    table(("NAME", "ID", "SIZE", "MODIFIED"), rows)
    return 0
