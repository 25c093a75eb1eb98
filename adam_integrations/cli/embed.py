"""``adam embed``: print the embeddings of texts as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from adam_integrations.cli.common import BACKEND_HELP
from adam_integrations.manager import ModelManager


def add(commands: Any) -> None:
    embed = commands.add_parser("embed", help="print the embeddings of texts as JSON")
    embed.add_argument("texts", nargs="+")
    embed.add_argument("--model", default=None, help="embedding model reference")
    embed.add_argument("--backend", default="auto", help=BACKEND_HELP)
    embed.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    manager = ModelManager(model_type=args.backend, embedding_model=args.model)
    json.dump(manager.batch_embed(args.texts), sys.stdout)
    print()
    return 0
