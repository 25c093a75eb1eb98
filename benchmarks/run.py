"""Speed of adam-integrations against the anchors, measured in one run, as ratios.

    make bench                  # or: .venv/bin/python benchmarks/run.py [--quick]

Anchors (same machine, same run, same model files):
- chat: raw transformers ``generate`` on the same converted model and dtype, and
  llama.cpp (llama-cpp-python) on the same GGUF; SmolLM2-135M Q4_1, greedy, 100 tokens.
- loading: the first GGUF load (transformers dequantizes) against our cached load.
- embeddings: 1,000 mixed-length texts with all-MiniLM-L6-v2 through sentence-transformers,
  langchain-huggingface ``HuggingFaceEmbeddings`` and LlamaIndex ``HuggingFaceEmbedding``.

Absolute numbers vary between machines; the ratios are what the goals are stated in.
Results are printed and written to ``benchmarks/results/<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("ADAM_CACHE_DIR", tempfile.mkdtemp(prefix="adam-bench-cache-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from adam_integrations.backends.huggingface import HuggingFaceModel
from adam_integrations.catalog.embedded import EMBEDDED_CHAT, EMBEDDED_EMBEDDING

CHAT = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]
NEW_TOKENS = 100


def best_of(runs: int, measure: Callable[[], float]) -> float:
    """The best (highest) rate of several runs: the least disturbed by the machine."""
    return max(measure() for _ in range(runs))


def chat_benchmarks(runs: int) -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = EMBEDDED_CHAT.require_path()
    results: dict[str, float] = {}

    started = time.perf_counter()
    first = HuggingFaceModel(str(gguf))
    first.load()
    results["load_first_s"] = time.perf_counter() - started
    first.unload()
    started = time.perf_counter()
    cached = HuggingFaceModel(str(gguf))
    cached.load()
    results["load_cached_s"] = time.perf_counter() - started
    folder = cached._ensure_loaded().folder
    cached.unload()

    for dtype in ("float32", "bfloat16"):
        ours = HuggingFaceModel(str(gguf), dtype=dtype)
        ours.chat(CHAT, max_tokens=4, temperature=0)  # warm-up

        def measure_ours(model: HuggingFaceModel = ours) -> float:
            started = time.perf_counter()
            usage = model.chat(CHAT, max_tokens=NEW_TOKENS, temperature=0).usage
            return usage.completion_tokens / (time.perf_counter() - started)

        results[f"ours_{dtype}_tok_s"] = best_of(runs, measure_ours)
        ours.unload()

        tokenizer = AutoTokenizer.from_pretrained(folder)
        raw = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype)).eval()
        prompt = tokenizer.apply_chat_template(
            CHAT, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

        def measure_raw(model=raw, prompt=prompt) -> float:
            started = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(**prompt, max_new_tokens=NEW_TOKENS, do_sample=False)
            generated = out.shape[-1] - prompt["input_ids"].shape[-1]
            return generated / (time.perf_counter() - started)

        measure_raw()  # warm-up
        results[f"raw_transformers_{dtype}_tok_s"] = best_of(runs, measure_raw)
        del raw

    try:
        from llama_cpp import Llama
    except ImportError:
        return results
    llama = Llama(model_path=str(gguf), n_ctx=2048, n_threads=os.cpu_count() or 1, verbose=False)

    def measure_llama() -> float:
        started = time.perf_counter()
        out = llama.create_chat_completion(CHAT, max_tokens=NEW_TOKENS, temperature=0)
        return out["usage"]["completion_tokens"] / (time.perf_counter() - started)

    measure_llama()
    results["llama_cpp_tok_s"] = best_of(runs, measure_llama)
    return results


def embedding_texts(count: int = 1000) -> list[str]:
    rng = random.Random(0)
    words = [
        "model", "data", "vector", "search", "local", "fast", "query", "index", "answer",
        "token", "language", "graph", "retrieval", "context", "memory", "chunk", "document",
        "embed", "python", "agent", "tool",
    ]
    return [
        " ".join(rng.choice(words) for _ in range(rng.choice([3, 8, 20, 60, 150, 300])))
        for _ in range(count)
    ]


def embedding_benchmarks(count: int) -> dict[str, float]:
    folder = str(EMBEDDED_EMBEDDING.require_path())
    texts = embedding_texts(count)
    results: dict[str, float] = {}

    def rate(embed: Callable[[list[str]], object]) -> float:
        embed(texts[:16])  # warm-up
        started = time.perf_counter()
        embed(texts)
        return len(texts) / (time.perf_counter() - started)

    ours = HuggingFaceModel(folder)
    results["ours_texts_s"] = rate(ours.embed)
    ours.unload()

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(folder, device="cpu")
    results["sentence_transformers_texts_s"] = rate(lambda t: st.encode(t, batch_size=32))
    try:
        from langchain_huggingface import HuggingFaceEmbeddings

        lc = HuggingFaceEmbeddings(model_name=folder)
        results["langchain_huggingface_texts_s"] = rate(lc.embed_documents)
    except ImportError:
        pass
    try:
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding

        li = HuggingFaceEmbedding(model_name=folder, device="cpu")
        results["llama_index_texts_s"] = rate(li.get_text_embedding_batch)
    except ImportError:
        pass
    return results


def ratios(r: dict[str, float]) -> dict[str, float]:
    pairs = {
        "chat bf16 vs raw transformers bf16": (
            "ours_bfloat16_tok_s",
            "raw_transformers_bfloat16_tok_s",
        ),
        "chat fp32 vs raw transformers fp32": (
            "ours_float32_tok_s",
            "raw_transformers_float32_tok_s",
        ),
        "chat bf16 vs fp32 (ours)": ("ours_bfloat16_tok_s", "ours_float32_tok_s"),
        "chat bf16 vs llama.cpp": ("ours_bfloat16_tok_s", "llama_cpp_tok_s"),
        "cached load speed-up vs first load": ("load_first_s", "load_cached_s"),
        "embeddings vs sentence-transformers": ("ours_texts_s", "sentence_transformers_texts_s"),
        "embeddings vs langchain-huggingface": ("ours_texts_s", "langchain_huggingface_texts_s"),
        "embeddings vs LlamaIndex HuggingFaceEmbedding": ("ours_texts_s", "llama_index_texts_s"),
    }
    return {name: r[a] / r[b] for name, (a, b) in pairs.items() if a in r and b in r and r[b]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run each, 200 texts")
    args = parser.parse_args()
    runs, count = (1, 200) if args.quick else (3, 1000)
    results = {**chat_benchmarks(runs), **embedding_benchmarks(count)}
    summary = ratios(results)
    print("\nmeasurements:")
    for key, value in results.items():
        print(f"  {key:<40} {value:10.2f}")
    print("\nratios (>1 means adam-integrations is faster):")
    for key, value in summary.items():
        print(f"  {key:<48} {value:6.2f}x")
    out = Path(__file__).parent / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "measurements": results,
                "ratios": summary,
                "python": sys.version,
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
