"""``adam pull``: download a model into the local cache."""

from __future__ import annotations

import argparse
from typing import Any


def add(commands: Any) -> None:
    pull = commands.add_parser("pull", help="download a model into the local cache")
    pull.add_argument("model", help="a model reference, e.g. hf:Qwen/Qwen3-8B-GGUF:Q4_K_M")
    pull.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.catalog.defaults import resolve_model
    from adam_integrations.core.stores.hub import hub_gguf, hub_snapshot

    source = resolve_model(args.model)
    if source.kind != "hub":
        print(f"already on disk: {source.location}")
        return 0
    where = {"revision": None, "cache_dir": None, "allow_download": True}
    path = (hub_gguf(source.location, source.quantization, **where) if source.gguf_repo
            else hub_snapshot(source.location, **where))
    print(f"pulled {source.name}: {path}")
    return 0
