"""``adam convert``: a transformers checkpoint as a GGUF, or a GGUF dequantized into an
F16/BF16/F32/Q8_0 GGUF or a transformers checkpoint."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from adam_integrations.cli.common import add_destination


def add(commands: Any) -> None:
    conversion = commands.add_parser(
        "convert", help="write a transformers checkpoint (safetensors) as a GGUF, for "
                        "llama.cpp and Ollama; or a GGUF (smollm2 too) dequantized into an "
                        "f16/bf16/f32 GGUF or a transformers checkpoint (--to transformers)")
    conversion.add_argument("model", help="a checkpoint folder, a downloaded hf:org/repo, "
                                          "a catalog name, or a GGUF (a path, an Ollama "
                                          "name, the embedded smollm2)")
    conversion.add_argument("--type", default="auto",
                            choices=["auto", "f16", "bf16", "q8_0", "f32"],
                            help="the type written (default auto: a checkpoint's 16-bit "
                                 "type, f16 for f32 and for a GGUF); adam quantize makes "
                                 "smaller ones")
    conversion.add_argument("--to", default="gguf", choices=["gguf", "transformers"],
                            help="what a GGUF becomes (default gguf; transformers: a "
                                 "checkpoint folder, for fine-tuning)")
    add_destination(conversion)
    conversion.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.tools import convert

    done = convert(args.model, args.type, output=args.output, name=args.name, to=args.to,
                   progress=sys.stderr.isatty())
    print(f"{done.file_type}: {done.path} ({done.output_bytes / 1e6:,.1f} MB from "
          f"{done.source}, {done.seconds:.1f} s)"
          + (f"\n  Ollama model {done.ollama_name}" if done.ollama_name else ""))
    return 0
