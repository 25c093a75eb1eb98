"""``adam serve``'s request path before and after a change, side by side in one run.

    .venv/bin/python benchmarks/serve_ab.py --ref <git ref> [--rounds 3]

Runs ``adam serve`` from the working tree ("new") and from ``<ref>`` ("old": checked out
with ``git worktree`` into a temporary folder and run with the same virtual environment),
alternating round by round, each server fresh with the embedded SmolLM2 GGUF, and
measures with the ``openai`` client:

- **small requests**: 8 clients at once, each sending 25 chat completions of one token:
  requests per second and the median latency. What a request costs besides the model:
  reading and checking the body, the model's chat template, routing, the answer.
- **streams**: 1 client, then 8 at once, each streaming 100 greedy tokens: tokens per
  second in all.

Each figure is the median over the rounds; the ratio is new / old (for the latency lower
is better, for the rest higher; the goal for a change that only adds checks: >= 0.98x
of the speeds). Results are printed and written to
``benchmarks/results/serve-ab-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from server_process import AdamServe  # benchmarks/, the script's own folder

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 8
SMALL_REQUESTS = 25
STREAM_TOKENS = 100
TOPICS = ["a dragon who learns to cook", "a lighthouse keeper", "a robot gardener",
          "a lost kitten", "a city under the sea", "a time-travelling baker",
          "a mountain village", "a detective owl"]


class ServeFrom(AdamServe):
    """``adam serve`` with the package imported from ``source`` (a checkout's root)."""

    def __init__(self, source: Path) -> None:
        super().__init__("--parallel", str(CLIENTS))
        self.source = source

    def __enter__(self) -> str:
        previous = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(self.source)
        try:
            return super().__enter__()
        finally:
            if previous is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = previous


async def small_requests(url: str) -> dict[str, float]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
    latencies: list[float] = []

    async def one_client(index: int) -> None:
        for turn in range(SMALL_REQUESTS):
            started = time.perf_counter()
            await client.chat.completions.create(
                model="smollm2:135m", max_tokens=1, temperature=0,
                messages=[{"role": "user", "content": f"Say {index}-{turn}."}])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one_client(i) for i in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    await client.close()
    return {"requests_per_s": len(latencies) / elapsed,
            "median_latency_ms": statistics.median(latencies) * 1000}


async def streams(url: str, clients: int) -> float:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
    tokens = 0

    async def one_stream(index: int) -> None:
        nonlocal tokens
        stream = await client.chat.completions.create(
            model="smollm2:135m", max_tokens=STREAM_TOKENS, temperature=0, stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": f"Tell a story about {TOPICS[index]}."}])
        async for chunk in stream:
            if chunk.usage is not None:
                tokens += chunk.usage.completion_tokens

    started = time.perf_counter()
    await asyncio.gather(*(one_stream(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    await client.close()
    return tokens / elapsed


def measure(source: Path) -> dict[str, float]:
    with ServeFrom(source) as url:
        asyncio.run(streams(url, 1))  # warm: the model loaded, the template compiled
        figures = asyncio.run(small_requests(url))
        figures["stream_1_tok_s"] = asyncio.run(streams(url, 1))
        figures[f"stream_{CLIENTS}_tok_s"] = asyncio.run(streams(url, CLIENTS))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", required=True, help="the git ref to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="adam-ab-") as folder:
        old = Path(folder) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.ref],
                       cwd=ROOT, check=True, capture_output=True)
        try:
            runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
            for round_number in range(args.rounds):
                order = [("old", old), ("new", ROOT)]
                for name, source in order if round_number % 2 == 0 else order[::-1]:
                    runs[name].append(measure(source))
                    print(f"round {round_number + 1} {name}: {runs[name][-1]}", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT,
                           check=False, capture_output=True)
    medians = {name: {key: statistics.median(r[key] for r in results) for key in results[0]}
               for name, results in runs.items()}
    print(f"\n{'figure':<22} {'old':>10} {'new':>10} {'new/old':>8}")
    for key in medians["old"]:
        old_value, new_value = medians["old"][key], medians["new"][key]
        print(f"{key:<22} {old_value:10.1f} {new_value:10.1f} {new_value / old_value:7.2f}x")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"serve-ab-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(
        {"ref": args.ref, "rounds": args.rounds, "medians": medians, "runs": runs},
        indent=2))


if __name__ == "__main__":
    main()
