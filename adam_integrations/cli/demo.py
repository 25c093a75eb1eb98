"""``adam demo``: stream an answer and compare two embeddings."""

from __future__ import annotations

import argparse
from typing import Any

from adam_integrations.cli.common import (
    cosine,
    model_options,
    stream_answer,
    usage_line,
    wrapped,
)
from adam_integrations.core.types import ChatMessage
from adam_integrations.manager import ModelManager

QUESTION = "What is the capital of France? Answer in one sentence."
TEXTS = ("A cat sits on the mat.", "A kitten is resting on a rug.")


def add(commands: Any) -> None:
    demo = commands.add_parser("demo", help="stream an answer and compare two embeddings")
    model_options(demo)
    demo.add_argument("--question", default=QUESTION)
    demo.add_argument("--embedding-model", default=None, help="embedding model reference")
    demo.add_argument("--verbose", action="store_true",
                      help="say why this model and backend were picked")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    manager = ModelManager(model_type=args.backend, model=args.model,
                           embedding_model=args.embedding_model)
    print(wrapped("Model: ", manager.explanation if args.verbose else
                  f"{manager.summary}; --verbose says why"))
    manager.load()
    print(f"\nQ: {args.question}\nA: ", end="", flush=True)
    usage = stream_answer(manager, [ChatMessage("user", args.question)], args)
    info = manager.info
    precision = info.dtype or info.quantization or "?"
    print(f"\n[{info.name} on {info.backend}/{info.device} ({precision}): "
          f"{usage_line(usage)}]")

    first, second = manager.batch_embed(list(TEXTS))
    embedder = manager.embedder.info()
    print(f"\nEmbeddings ({embedder.name}, {embedder.embedding_dimension} dimensions):")
    print(f"  {TEXTS[0]!r} vs {TEXTS[1]!r}")
    print(f"  cosine similarity: {cosine(first, second):.4f}")
    return 0
