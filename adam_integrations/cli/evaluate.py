"""``adam eval``: perplexity over a text, divergence from a reference and speed of GGUF
models, as one table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from adam_integrations.cli.common import text_file


def add(commands: Any) -> None:
    evaluation = commands.add_parser(
        "eval", help="perplexity over a text, divergence from a reference and speed of "
                     "GGUF models (llama.cpp), as one table")
    evaluation.add_argument("models", nargs="+", help="GGUFs: paths, Ollama names, hf: GGUFs")
    evaluation.add_argument("--text", required=True, help="a text file to score (several "
                                                         "thousand tokens at least)")
    evaluation.add_argument("--reference", default=None,
                            help="the unquantized model, for KL divergence and top-1 "
                                 "agreement")
    evaluation.add_argument("--context", type=int, default=512,
                            help="tokens per chunk (default 512, as llama-perplexity)")
    evaluation.add_argument("--chunks", type=int, default=None,
                            help="read at most this many chunks")
    evaluation.add_argument("--backend", default="llamacpp",
                            choices=["llamacpp", "huggingface"],
                            help="run the models on llama.cpp (GGUF) or transformers")
    evaluation.add_argument("--reference-backend", default=None,
                            choices=["llamacpp", "huggingface"],
                            help="run the reference there instead (e.g. a converted GGUF "
                                 "against its transformers checkpoint)")
    evaluation.add_argument("--json", action="store_true", help="print JSON instead")
    evaluation.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.tools import evaluate

    text = text_file(args.text)
    results = evaluate(args.models, text, reference=args.reference, context=args.context,
                       chunks=args.chunks, backend=args.backend,
                       reference_backend=args.reference_backend,
                       text_name=Path(args.text).name,
                       report=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
        return 0
    print(f"{'model':<36} {'type':<8} {'perplexity':>10} {'KL':>8} {'top-1':>6} "
          f"{'prompt tok/s':>12} {'gen tok/s':>9}")
    for r in results:
        kl = f"{r.kl_divergence:8.4f}" if r.kl_divergence is not None else f"{'':>8}"
        top1 = f"{r.top1_agreement:6.1%}" if r.top1_agreement is not None else f"{'':>6}"
        print(f"{r.model[:36]:<36} {r.quantization or '?':<8} {r.perplexity:10.4f} {kl} "
              f"{top1} {r.prefill_tokens_per_s:12.1f} {r.decode_tokens_per_s:9.1f}")
    print(f"({results[0].scored_tokens} tokens scored, chunks of {args.context})")
    return 0
