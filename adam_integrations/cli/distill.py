"""``adam distill``: a student taught a teacher's next-token distribution."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any


def add(commands: Any) -> None:
    distill = commands.add_parser(
        "distill", help="teach a student model (a pruned or smaller one with the same "
                        "tokenizer) the teacher's next-token distribution on your data")
    distill.add_argument("--teacher", required=True, help="the model to learn from")
    distill.add_argument("--student", required=True, help="the model to train")
    distill.add_argument("--data", required=True, help="text, chat or prompt-completion "
                                                        "data, as adam tune reads it")
    distill.add_argument("-o", "--output", default=None,
                         help="the folder to write (new; default <student>-distilled)")
    distill.add_argument("--eval-data", default=None, help="held-out data (its loss "
                                                           "before and after)")
    distill.add_argument("--temperature", type=float, default=2.0,
                         help="the softmax temperature of both distributions (default 2)")
    distill.add_argument("--alpha", type=float, default=0.5,
                         help="the share of the loss that is the KL divergence; the rest "
                              "is the data's own loss (default 0.5)")
    distill.add_argument("--lora", action="store_true",
                         help="train a LoRA adapter on the student, not all its weights")
    for flag, kind, default, text in (
            ("--epochs", float, 3.0, "passes over the data (default 3)"),
            ("--max-steps", int, None, "optimizer steps (instead of --epochs)"),
            ("--lr", float, None, "learning rate (default 2e-5; 2e-4 with --lora)"),
            ("--batch-size", int, 4, "sequences per step (default 4)"),
            ("--max-length", int, 1024, "tokens per sequence (default 1024)")):
        distill.add_argument(flag, type=kind, default=default, help=text)
    distill.add_argument("--resume", action="store_true",
                         help="continue the run in --output from its last checkpoint")
    distill.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.tools.distill import distill
    from adam_integrations.tools.tune import TuneSettings

    settings = TuneSettings(full=not args.lora, epochs=args.epochs, max_steps=args.max_steps,
                            learning_rate=args.lr, batch_size=args.batch_size,
                            max_length=args.max_length)
    done = distill(args.teacher, args.student, args.data, output=args.output,
                   temperature=args.temperature, alpha=args.alpha, eval_data=args.eval_data,
                   resume=args.resume, settings=settings, progress=sys.stderr.isatty())
    print(f"distilled: {done.path} ({done.steps} steps, {done.tokens:,} tokens at "
          f"{done.tokens_per_second:,.0f} tokens/s)")
    if done.eval_loss is not None and done.eval_loss_before is not None:
        print(f"  held-out perplexity {math.exp(done.eval_loss_before):.2f} -> "
              f"{math.exp(done.eval_loss):.2f}")
    return 0
