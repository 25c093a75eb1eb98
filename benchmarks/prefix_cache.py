"""A long shared prompt sent by many users at once: ``adam serve`` against ``llama-server``.

    .venv/bin/python benchmarks/prefix_cache.py [--rounds 3] [--prompt-tokens 2000]

What a RAG app or an agent sends: the same long system prompt (instructions, a tool list,
retrieved documents) with a different question from each of 8 users at once. Both servers
run the embedded SmolLM2 GGUF with 8 slots of 8192 tokens (as ``benchmarks/concurrency.py``
starts them); each client is the ``openai`` package streaming a 16-token greedy answer.
Three waves per round, each with a system prompt no earlier round has sent:

- **unique**: every client's system prompt differs in its first words (same length):
  nothing can be shared, what every request costs without prefix caching;
- **shared, cold**: all 8 send the same new system prompt together: computed once while
  the others wait for it (adam serve), or by every slot (a server without cross-slot
  sharing);
- **shared, warm**: the same system prompt again with new questions: it is in the caches.

Each figure is the median over the rounds of the wave's median and worst time to first
token; the servers alternate wave by wave. Results are printed and written to
``benchmarks/results/prefix-cache-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

from concurrency import SLOTS, LlamaServer  # benchmarks/, the script's own folder
from llama_server_build import llama_server_binary
from server_process import AdamServe

from adam_integrations.catalog.embedded import EMBEDDED_CHAT

CLIENTS = 8
NEW_TOKENS = 16
QUESTIONS = ["Which item is the cheapest?", "Where is item 12 kept?",
             "What does item 30 cost?", "Is item 7 on shelf 0?", "Name two items.",
             "Which shelf holds most items?", "What is item 3?", "Summarise the rules."]


def system_prompt(tag: str, tokens: int) -> str:
    """A shop's rules, about ``tokens`` SmolLM2 tokens long, starting with ``tag``."""
    rules = " ".join(f"Rule {i}: item {i} costs {i % 50} euros and is kept on shelf {i % 7}."
                     for i in range(tokens // 20))
    return f"{tag}. You are the assistant of a hardware store. {rules}"


def one_client(base_url: str, system: str, question: str, start: threading.Barrier,
               firsts: list[float]) -> None:
    from openai import OpenAI

    api = OpenAI(base_url=base_url, api_key="none", max_retries=0)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    start.wait()
    began = time.perf_counter()
    stream = api.chat.completions.create(model="smollm2", messages=messages,
                                         max_tokens=NEW_TOKENS, temperature=0, stream=True)
    first = None
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - began
    firsts.append(first if first is not None else time.perf_counter() - began)


def wave(base_url: str, systems: list[str], questions: list[str]) -> dict[str, float]:
    firsts: list[float] = []
    start = threading.Barrier(len(systems) + 1)
    threads = [threading.Thread(target=one_client, args=(base_url, s, q, start, firsts))
               for s, q in zip(systems, questions, strict=True)]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join()
    return {"first_median_s": statistics.median(firsts), "first_worst_s": max(firsts)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=2000)
    args = parser.parse_args()
    gguf = str(EMBEDDED_CHAT.require_path())
    waves = ("unique", "shared, cold", "shared, warm")
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    with LlamaServer(llama_server_binary(), gguf) as theirs, \
            AdamServe("--parallel", str(SLOTS)) as ours:
        servers = {"llama-server": theirs, "adam serve": f"{ours}/v1"}
        for url in servers.values():  # load the model
            wave(url, [system_prompt("Warm-up", 50)], ["Hi"])
        for r in range(args.rounds):
            for name, url in servers.items():
                tag = f"{name} round {r}"
                unique = [system_prompt(f"{tag} shop {c}", args.prompt_tokens)
                          for c in range(CLIENTS)]
                shared = [system_prompt(f"{tag} shared", args.prompt_tokens)] * CLIENTS
                again = [f"{q} Be brief." for q in QUESTIONS]
                for label, systems, questions in (("unique", unique, QUESTIONS),
                                                  ("shared, cold", shared, QUESTIONS),
                                                  ("shared, warm", shared, again)):
                    results.setdefault(name, {}).setdefault(label, []).append(
                        wave(url, systems, questions))
    table = {name: {label: {key: statistics.median(r[key] for r in rounds)
                            for key in rounds[0]}
                    for label, rounds in by_wave.items()}
             for name, by_wave in results.items()}
    print(f"{CLIENTS} clients, a ~{args.prompt_tokens}-token system prompt, time to first "
          "token median/worst (s):")
    print(f"{'':>14} | " + " | ".join(f"{name:>14}" for name in table))
    for label in waves:
        print(f"{label:>14} | " + " | ".join(
            f"{table[n][label]['first_median_s']:5.2f}/{table[n][label]['first_worst_s']:5.2f}"
            .rjust(14) for n in table))
    ours, theirs = table["adam serve"], table["llama-server"]
    ratios = {f"{label}_worst_first_token_vs_llama_server":
              ours[label]["first_worst_s"] / theirs[label]["first_worst_s"] for label in waves}
    ratios["cold_shared_worst_vs_unique"] = (ours["shared, cold"]["first_worst_s"]
                                             / ours["unique"]["first_worst_s"])
    ratios["warm_shared_worst_vs_unique"] = (ours["shared, warm"]["first_worst_s"]
                                             / ours["unique"]["first_worst_s"])
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}x")
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    out = folder / f"prefix-cache-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"table": table, "ratios": ratios,
                               "prompt_tokens": args.prompt_tokens}, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
