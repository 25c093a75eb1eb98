"""``adam run``: answer a prompt, or chat when no prompt is given."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from adam_integrations.cli.common import (
    BACKEND_HELP,
    generation_options,
    stream_answer,
    usage_line,
    wrapped,
)
from adam_integrations.core.types import ChatMessage, check_prompt
from adam_integrations.manager import ModelManager


def add(commands: Any) -> None:
    run_ = commands.add_parser("run", help="answer a prompt, or chat when no prompt is given")
    run_.add_argument("model", nargs="?", default=None,
                      help="model reference (default: auto; `adam run \"a prompt\"` asks "
                           "the default model: a reference has no spaces)")
    run_.add_argument("prompt", nargs="*", help="the prompt; omit it for an interactive chat")
    generation_options(run_)
    run_.add_argument("--system", default=None, help="system prompt")
    run_.add_argument("--backend", default="auto", help=BACKEND_HELP)
    run_.add_argument("--verbose", action="store_true",
                      help="print token counts and speed, and why this model was picked")
    run_.add_argument("--threads", type=int, default=None, metavar="N",
                      help="CPU threads llama.cpp decodes with (default: the usable cores)")
    run_.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.model is not None and any(c.isspace() for c in args.model.strip()):
        args.prompt, args.model = [args.model, *args.prompt], None  # adam run "a prompt"
    if args.prompt:  # an empty prompt is refused before any model loads
        check_prompt(" ".join(args.prompt))
    manager = ModelManager(model_type=args.backend, model=args.model,
                           **({"n_threads": args.threads} if args.threads else {}))
    history: list[ChatMessage] = [ChatMessage("system", args.system)] if args.system else []
    if args.prompt:
        history.append(ChatMessage("user", " ".join(args.prompt)))
        usage = stream_answer(manager, history, args)
        print()
        if args.verbose:
            print(usage_line(usage), file=sys.stderr)
        return 0
    print(f"{wrapped('', manager.explanation if args.verbose else manager.summary)}\n"
          "Type a message; /bye to leave.", file=sys.stderr)
    while True:
        try:
            line = input(">>> ")
        except EOFError:
            return 0
        if line.strip() in ("/bye", "/exit", "/quit"):
            return 0
        if not line.strip():
            continue
        history.append(ChatMessage("user", line))
        parts: list[str] = []
        usage = stream_answer(manager, history, args, collect=parts)
        history.append(ChatMessage("assistant", "".join(parts)))
        print("\n" if not args.verbose else f"\n{usage_line(usage)}\n")
