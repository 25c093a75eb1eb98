"""llama.cpp's decode speed on a CPU shared with other work, by thread count.

    .venv/bin/python benchmarks/busy_cpu.py [--load N] [--rounds R]

Starts N busy processes (default 4 per core: a machine whose load is far above its core
count, as a laptop building software while a model answers), decodes 100 greedy
tokens of the embedded SmolLM2 GGUF with each thread count from 1 to the usable cores,
R interleaved rounds each, and prints tokens/s (median, and all rounds), with no load
first, then with it. llama.cpp's threads meet at a barrier after every step, so one thread
descheduled stalls the others: on a busy CPU fewer threads can be faster.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.core.hardware import usable_cores

PROMPT = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]
TOKENS = 100


def _burn() -> None:
    while True:
        pass


def _speed(model: LlamaCppModel) -> float:
    started = time.perf_counter()
    completion = model.chat(PROMPT, max_tokens=TOKENS, temperature=0)
    return completion.usage.completion_tokens / (time.perf_counter() - started)


def _measure(thread_counts: range, rounds: int) -> dict[int, list[float]]:
    """Tokens/s per thread count; one model in memory at a time (an idle llama.cpp
    thread pool of another model would take its share of the CPU)."""
    speeds: dict[int, list[float]] = {threads: [] for threads in thread_counts}
    for _ in range(rounds):
        for threads in thread_counts:
            model = LlamaCppModel("smollm2", n_threads=threads, parallel=1)
            try:
                _speed(model)  # loaded and warm
                speeds[threads].append(_speed(model))
            finally:
                model.unload()
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=int, default=4 * usable_cores())
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    models = range(1, usable_cores() + 1)
    quiet = _measure(models, args.rounds)
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.load)]
    for burner in burners:
        burner.start()
    try:
        busy = _measure(models, args.rounds)
    finally:
        for burner in burners:
            burner.terminate()
            burner.join()
    print(f"decode tokens/s, {TOKENS} greedy tokens, {args.rounds} rounds "
          f"(usable cores: {usable_cores()})")
    for label, table in ((f"{args.load} busy processes", busy), ("quiet", quiet)):
        for threads, speeds in table.items():
            runs = ", ".join(f"{s:.1f}" for s in speeds)
            print(f"  {label:<20} n_threads={threads}: median {statistics.median(speeds):6.1f}"
                  f"  ({runs})")


if __name__ == "__main__":
    main()
