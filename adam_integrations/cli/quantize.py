"""``adam quantize``: a GGUF quantized by llama.cpp's quantizer, into a file or Ollama's
store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from adam_integrations.cli.common import add_destination


def add(commands: Any) -> None:
    quantize = commands.add_parser(
        "quantize", help="quantize a GGUF with llama.cpp's quantizer (Q8_0, Q6_K, Q5_K_M, "
                         "Q4_K_M, ...) into a file or Ollama's store")
    quantize.add_argument("model", help="an F16/BF16/F32 GGUF: a path, an Ollama name, "
                                        "hf:org/repo:F16")
    quantize.add_argument("type", help="the quantization, e.g. Q4_K_M")
    add_destination(quantize)
    quantize.add_argument("--allow-requantize", action="store_true",
                          help="quantize a file that is already quantized")
    quantize.add_argument("--threads", type=int, default=None,
                          help="threads for the quantizer (default: every core)")
    quantize.add_argument("--imatrix", default=None,
                          help="an importance matrix (adam imatrix, or llama-imatrix's "
                               "GGUF); the IQ1/IQ2 types need one")
    quantize.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.tools import quantize

    done = quantize(args.model, args.type, output=args.output, name=args.name,
                    allow_requantize=args.allow_requantize, threads=args.threads,
                    imatrix=args.imatrix, progress=sys.stderr.isatty())
    print(f"{done.quantization}: {done.path} ({done.output_bytes / 1e6:,.1f} MB from "
          f"{done.source_bytes / 1e6:,.1f} MB, {done.seconds:.1f} s)"
          + (f"\n  Ollama model {done.ollama_name}" if done.ollama_name else ""))
    return 0
