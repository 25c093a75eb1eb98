"""``adam tune``: a LoRA adapter (or, with ``--full``, a whole small model) trained on a
data file with PEFT and TRL."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any


def add(commands: Any) -> None:
    tune = commands.add_parser(
        "tune", help="fine-tune a model on your data: a LoRA adapter (PEFT + TRL), or "
                     "--full for small models",
        description="Train a LoRA adapter on BASE (a checkpoint folder, an hf: repository, "
                    "a catalog name or a GGUF such as smollm2, trained on its dequantized "
                    "checkpoint) from --data: chat JSONL ({\"messages\": [...]}), "
                    "{\"prompt\", \"completion\"} JSONL, {\"text\"} JSONL or a plain text "
                    "file. Ctrl-C saves and stops; --resume continues.")
    tune.add_argument("base", help="the model to train")
    tune.add_argument("--data", required=True, help="the training data file")
    tune.add_argument("-o", "--output", default=None,
                      help="the folder to write (new; default <base>-tuned)")
    tune.add_argument("--eval-data", default=None,
                      help="held-out data: its loss is reported before and after")
    tune.add_argument("--full", action="store_true",
                      help="train every weight, not an adapter (small models)")
    tune.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    tune.add_argument("--alpha", type=float, default=None,
                      help="LoRA alpha (default twice the rank)")
    tune.add_argument("--target-modules", default="all-linear",
                      help="layers to adapt: all-linear (default) or names, e.g. "
                           "q_proj,v_proj")
    tune.add_argument("--epochs", type=float, default=3.0, help="passes over the data "
                                                                "(default 3)")
    tune.add_argument("--max-steps", type=int, default=None,
                      help="optimizer steps (instead of --epochs)")
    tune.add_argument("--lr", type=float, default=None,
                      help="learning rate (default 2e-4 LoRA, 2e-5 --full)")
    tune.add_argument("--batch-size", type=int, default=4, help="sequences per step "
                                                                "(default 4)")
    tune.add_argument("--grad-accum", type=int, default=1,
                      help="steps accumulated per optimizer step (default 1)")
    tune.add_argument("--max-length", type=int, default=1024,
                      help="tokens per sequence (default 1024)")
    tune.add_argument("--save-steps", type=int, default=None,
                      help="a checkpoint every this many steps (default a tenth of the run)")
    tune.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=None,
                      help="activation checkpointing: much less memory, about a third "
                           "slower (default: only when the run would not fit without it)")
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--resume", action="store_true",
                      help="continue the run in --output from its last whole checkpoint")
    tune.add_argument("--device", default=None, help="cpu or cuda (default: a GPU if any)")
    tune.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.tools.tune import TuneSettings, tune

    settings = TuneSettings(
        full=args.full, rank=args.rank, alpha=args.alpha, target_modules=args.target_modules,
        epochs=args.epochs, max_steps=args.max_steps, learning_rate=args.lr,
        batch_size=args.batch_size, grad_accum=args.grad_accum, max_length=args.max_length,
        seed=args.seed, save_steps=args.save_steps, checkpointing=args.checkpointing)
    done = tune(args.base, args.data, output=args.output, eval_data=args.eval_data,
                resume=args.resume, device=args.device, settings=settings,
                progress=sys.stderr.isatty())
    what = "model" if done.method == "full" else "LoRA adapter"
    print(f"{what}: {done.path} ({done.steps} steps, {done.tokens:,} tokens at "
          f"{done.tokens_per_second:,.0f} tokens/s"
          + (f", loss {done.train_loss:.3f}" if done.train_loss is not None else "") + ")")
    if done.eval_loss is not None:
        before = (f"{done.eval_loss_before:.3f} (perplexity "
                  f"{math.exp(done.eval_loss_before):.2f}) -> "
                  if done.eval_loss_before is not None else "")
        print(f"  held-out loss {before}{done.eval_loss:.3f} (perplexity "
              f"{math.exp(done.eval_loss):.2f})")
    if done.interrupted:
        print(f"  stopped early: the adapter is usable; --resume -o {done.path} continues")
    return 0
