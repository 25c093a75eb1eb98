"""``adam imatrix``: an importance matrix of a model over a text, for ``adam quantize
--imatrix`` (llama-imatrix's file format)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from adam_integrations.cli.common import text_file


def add(commands: Any) -> None:
    importance = commands.add_parser(
        "imatrix", help="an importance matrix of a model over a text, for adam quantize "
                        "--imatrix (llama-imatrix's file format)")
    importance.add_argument("model", help="a transformers checkpoint or an unquantized GGUF")
    importance.add_argument("--text", required=True, help="a text file like the model's "
                                                         "use (several thousand tokens)")
    importance.add_argument("-o", "--output", default=None,
                            help="the file to write (default: ./<model>-imatrix.gguf)")
    importance.add_argument("--context", type=int, default=512,
                            help="tokens per chunk (default 512, as llama-imatrix)")
    importance.add_argument("--chunks", type=int, default=None,
                            help="read at most this many chunks")
    importance.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.tools import importance_matrix

    print(f"importance matrix of {args.model} over {args.text}: loading the model, then "
          "one chunk at a time", file=sys.stderr, flush=True)
    done = importance_matrix(args.model, text_file(args.text), output=args.output,
                             context=args.context, chunks=args.chunks,
                             dataset=Path(args.text).name, progress=sys.stderr.isatty())
    print(f"{done.path}: {done.entries} matrices over {done.tokens} tokens "
          f"({done.chunks} chunks, {done.seconds:.1f} s); use it with adam quantize "
          f"--imatrix {done.path}")
    return 0
