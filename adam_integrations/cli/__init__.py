"""The ``adam`` command line: ``adam demo``, ``run``, ``show``, ``embed``, ``serve``,
``pull``, ``list``/``ls``, ``ps``, ``stop``, ``cp``, ``rm``, ``create``, ``hardware``,
``recommend``, ``share``, ``models``, and the tools ``convert``, ``quantize``,
``imatrix``, ``eval``.

Modelled on ``ollama``: ``adam run MODEL "prompt"`` streams an answer, ``adam run MODEL``
alone opens a chat (``/bye`` leaves), ``adam run "a prompt"`` asks the default model; bare
names from Ollama's store resolve; a misspelt command, flag or model name gets "did you
mean". Errors print one line saying what to do and exit 1.

One module per command, each with its parser (``add``) and its handler (``run``);
``parser.COMMANDS`` lists them in the order ``adam --help`` shows them, and ``common``
holds what several share (the model and generation flags, tables, the answer stream).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from adam_integrations.cli.common import cosine
from adam_integrations.cli.parser import build_parser
from adam_integrations.core.errors import AdamError

__all__ = ["cosine", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``adam`` console script."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        getattr(args, "command_parser", parser).unknown(extras)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except AdamError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `adam recommend | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
