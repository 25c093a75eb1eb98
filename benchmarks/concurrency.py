"""Many users at once: ``adam serve`` against llama.cpp's own ``llama-server``.

    .venv/bin/python benchmarks/concurrency.py [--rounds 3] [--clients 1,2,4,8]

Both servers run the embedded SmolLM2 GGUF with 8 slots of an 8192-token window each
(``llama-server -np 8 -c 65536``, ``adam serve --parallel 8``), built from the same
llama.cpp (``benchmarks/llama_server_build.py`` builds llama-server from the sources inside
the installed llama-cpp-python's sdist, once). For 1, 2, 4 and 8 clients at once, each
client is the ``openai`` package streaming one 100-token greedy answer (its own prompt);
a round measures the tokens/s of all clients together (their tokens over the time until
the last one finished) and every client's time to first token. The servers alternate
round by round; each figure is the median over the rounds. The same clients then run
in-process on one event loop: ``LlamaCppModel(parallel=8).astream_chat``, and the
transformers backend (``HuggingFaceModel(parallel=8)``, bf16, batched waves) to show
what batching is worth there.

Then the clients arrive one after another (``STAGGER`` seconds apart, every other one
with a ~1,500-token document before its question, as a RAG app sends them): the worst
time to first token shows whether a new request waits for earlier answers or long
prompts (issue 29: new requests join at the next step, long prompts are read in chunks
between the running streams' tokens, on both in-process backends).

Goals on the 2-core machine (issue 18): one client at least 0.95x llama-server's tokens/s;
8 clients at least 0.9x its tokens/s in all, and a worst first token within 2x of its.
Results are printed and written to ``benchmarks/results/concurrency-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from llama_server_build import llama_server_binary  # benchmarks/, the script's own folder
from server_process import AdamServe, _ServerProcess

from adam_integrations.backends.local.huggingface import HuggingFaceModel
from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.catalog.embedded import EMBEDDED_CHAT

SLOTS = 8
WINDOW = 8192  # the embedded model's whole context, adam serve's default window for it
NEW_TOKENS = 100
TOPICS = ["a dragon who learns to cook", "a lighthouse keeper", "a robot gardener",
          "a lost kitten", "a city under the sea", "a time-travelling baker",
          "a mountain village", "a detective owl"]


STAGGER = 0.25
STAGGERED = "8 staggered"
DOCUMENT = " ".join(f"Section {i}: the store keeps item {i} on shelf {i % 7} at {i % 50} "
                    "euros." for i in range(90))


def messages(client: int, staggered: bool = False) -> list[dict[str, str]]:
    question = f"Write a long story about {TOPICS[client % 8]}."
    if staggered and client % 2:  # a document of its own: nothing cached helps
        return [{"role": "system", "content": f"Document {client}. {DOCUMENT}"},
                {"role": "user", "content": question}]
    return [{"role": "user", "content": question}]


class LlamaServer(_ServerProcess):
    """``llama-server`` with ``SLOTS`` slots of ``WINDOW`` tokens on ``gguf``."""

    name = "llama-server"

    def __init__(self, binary: Path, gguf: str) -> None:
        self.binary, self.gguf = binary, gguf

    def command(self, port: int) -> list[str]:
        return [str(self.binary), "-m", self.gguf, "--host", "127.0.0.1", "--port",
                str(port), "-np", str(SLOTS), "-c", str(SLOTS * WINDOW), "-t", "2"]

    def urls(self, port: int) -> tuple[str, str]:
        return f"http://127.0.0.1:{port}/v1", f"http://127.0.0.1:{port}/health"


def one_client(base_url: str, client: int, start: threading.Barrier,
               results: list[dict[str, float]], staggered: bool = False) -> None:
    """Stream one answer; record its first-token delay and token count."""
    from openai import OpenAI

    api = OpenAI(base_url=base_url, api_key="none", max_retries=0)
    start.wait()
    if staggered:
        time.sleep(client * STAGGER)
    began = time.perf_counter()
    first, tokens, usage = None, 0, None
    stream = api.chat.completions.create(
        model="smollm2", messages=messages(client, staggered), max_tokens=NEW_TOKENS,
        temperature=0,
        stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].delta.content:
            tokens += 1
            if first is None:
                first = time.perf_counter() - began
    results.append({"first": first or 0.0, "tokens": usage or tokens,
                    "done": time.perf_counter()})


def server_round(base_url: str, clients: int, staggered: bool = False) -> dict[str, float]:
    results: list[dict[str, float]] = []
    start = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=one_client, args=(base_url, c, start, results,
                                                         staggered))
               for c in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return summary(results, began)


def summary(results: list[dict[str, float]], began: float) -> dict[str, float]:
    firsts = [r["first"] for r in results]
    wall = max(r["done"] for r in results) - began
    return {"tokens_per_s": sum(r["tokens"] for r in results) / wall,
            "first_median_s": statistics.median(firsts), "first_worst_s": max(firsts)}


def in_process_round(model: LlamaCppModel | HuggingFaceModel, clients: int,
                     staggered: bool = False) -> dict[str, float]:
    async def client(i: int, results: list[dict[str, float]], began: float) -> None:
        if staggered:
            await asyncio.sleep(i * STAGGER)
            began = time.perf_counter()
        first, tokens = None, 0
        async for chunk in model.astream_chat(messages(i, staggered), max_tokens=NEW_TOKENS,
                                              temperature=0):
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
            if chunk.text and first is None:
                first = time.perf_counter() - began
        results.append({"first": first or 0.0, "tokens": tokens,
                        "done": time.perf_counter()})

    async def all_clients() -> dict[str, float]:
        results: list[dict[str, float]] = []
        began = time.perf_counter()
        await asyncio.gather(*(client(i, results, began) for i in range(clients)))
        return summary(results, began)

    return asyncio.run(all_clients())


def medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="1,2,4,8")
    parser.add_argument("--no-staggered", action="store_true",
                        help="leave out the clients arriving one after another")
    args = parser.parse_args()
    rows = [(str(c), int(c), False) for c in args.clients.split(",")]
    if not args.no_staggered:
        rows.append((STAGGERED, SLOTS, True))
    gguf = str(EMBEDDED_CHAT.require_path())
    binary = llama_server_binary()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    table: dict[str, dict[str, dict[str, float]]] = {}
    with LlamaServer(binary, gguf) as theirs, AdamServe("--parallel", str(SLOTS)) as ours:
        servers = {"llama-server": theirs, "adam serve": f"{ours}/v1"}
        for url in servers.values():  # load the model, warm the caches
            server_round(url, 1)
        for label, clients, staggered in rows:
            rounds: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
            for _ in range(args.rounds):
                for name, url in servers.items():
                    rounds[name].append(server_round(url, clients, staggered))
            for name in servers:
                table.setdefault(name, {})[label] = medians(rounds[name])
    for name, model in (("in-process", LlamaCppModel(gguf, parallel=SLOTS)),
                        ("transformers", HuggingFaceModel(gguf, parallel=SLOTS))):
        in_process_round(model, 1)
        for label, clients, staggered in rows:
            table.setdefault(name, {})[label] = medians(
                [in_process_round(model, clients, staggered) for _ in range(args.rounds)])
        model.unload()
    report(table, [label for label, _, _ in rows],
           (version.stdout + version.stderr).strip().splitlines()[:1])
    return 0


def report(table: dict[str, dict[str, dict[str, float]]], labels: list[str],
           version: list[str]) -> None:
    print(f"{'clients':>12} | " + " | ".join(f"{name:>31}" for name in table))
    for key in labels:
        cells = []
        for name in table:
            r = table[name][key]
            cells.append(f"{r['tokens_per_s']:6.1f} tok/s, first {r['first_median_s']:.2f}/"
                         f"{r['first_worst_s']:.2f} s")
        print(f"{key:>12} | " + " | ".join(f"{c:>31}" for c in cells))
    ratios = {}
    theirs, ours = table["llama-server"], table["adam serve"]
    for key in labels:
        ratios[f"{key}_clients_tokens_per_s_vs_llama_server"] = (
            ours[key]["tokens_per_s"] / theirs[key]["tokens_per_s"])
        ratios[f"{key}_clients_worst_first_token_vs_llama_server"] = (
            ours[key]["first_worst_s"] / max(theirs[key]["first_worst_s"], 1e-9))
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}x")
    print("goals: 1 client >= 0.95x tokens/s; 8 clients >= 0.95x tokens/s and worst first "
          "token <= 2x (at once and staggered)")
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    out = folder / f"concurrency-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"table": table, "ratios": ratios, "llama_server": version},
                              indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    sys.exit(main())
