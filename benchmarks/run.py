"""Speed of adam-integrations against the anchors, measured in one run, as ratios.

    make bench                  # or: .venv/bin/python benchmarks/run.py [--quick]

Anchors (same machine, same run, same model files):
- chat: raw transformers ``generate`` on the same converted model and dtype, and
  llama.cpp (llama-cpp-python) on the same GGUF; SmolLM2-135M Q4_1, greedy, 100 tokens.
- the server: LangChain's ``ChatOllama`` streaming through ``adam serve`` against in-process
  ``ChatAdam`` on the same model, and 8 concurrent streaming ``ollama`` clients for 60 s.
- streaming as a LangChain user sees it: ``ChatAdam(model_type="llamacpp").stream`` against
  llama-cpp-python's own streaming chat completion (tokens/s and time to first token), and
  against ``ChatAdam(model_type="huggingface")``.
- constrained decoding: the same generation with a JSON-schema ``response_format``
  (xgrammar mask on every token) against unconstrained, both ours, on both backends; and
  the 76-schema corpus (``benchmarks/constrained.py``) on our two backends against
  llama-cpp-python's own ``response_format``: valid answers, crashes, decode tokens/s,
  grammar compile time and cache hits.
- loading: the first GGUF load (transformers dequantizes) against our cached load.
- embeddings: 1,000 mixed-length texts with all-MiniLM-L6-v2 through sentence-transformers
  (fp32), langchain-huggingface ``HuggingFaceEmbeddings`` and LlamaIndex
  ``HuggingFaceEmbedding``, against ours by default (bf16 where the CPU computes it), in
  fp32 and in int8 (``quantized=True``); and the quality of bf16 and int8 against fp32
  (worst cosine, top-5 neighbours of 100 queries over the 1,000 texts).
- indexing: ``VectorStoreIndex.from_documents`` over 1,000 short documents with
  ``AdamEmbedding`` against LlamaIndex's ``HuggingFaceEmbedding`` (same model).

Absolute numbers vary between machines; the ratios are what the goals are stated in.
Results are printed and written to ``benchmarks/results/<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if "ADAM_CACHE_DIR" not in os.environ:  # one cache for the whole run, removed after it
    os.environ["ADAM_CACHE_DIR"] = tempfile.mkdtemp(prefix="adam-bench-cache-")
    atexit.register(shutil.rmtree, os.environ["ADAM_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from server_process import AdamServe, LlamaCppPythonServer  # benchmarks/, the script's own folder

from adam_integrations.backends.local.huggingface import HuggingFaceModel
from adam_integrations.catalog.embedded import EMBEDDED_CHAT, EMBEDDED_EMBEDDING

CHAT = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]
NEW_TOKENS = 100


def best_of(runs: int, measure: Callable[[], float]) -> float:
    """The best (highest) rate of several runs: the least disturbed by the machine."""
    return max(measure() for _ in range(runs))


def _rate_of_best_run(runs: int, measure: Callable[[], float]) -> float:
    measure()  # warm-up
    return best_of(runs, measure)


def measure_load() -> dict[str, float]:
    gguf = str(EMBEDDED_CHAT.require_path())
    started = time.perf_counter()
    HuggingFaceModel(gguf).load()
    first = time.perf_counter() - started
    started = time.perf_counter()
    HuggingFaceModel(gguf).load()
    return {"load_first_s": first, "load_cached_s": time.perf_counter() - started}


# A schema whose answer is long enough to measure: the story runs to max_tokens.
STORY = {"type": "object", "properties": {"title": {"type": "string"},
                                          "story": {"type": "string"}},
         "required": ["title", "story"]}


def measure_ours(dtype: str, runs: int, constrained: bool = False) -> dict[str, float]:
    model = HuggingFaceModel(str(EMBEDDED_CHAT.require_path()), dtype=dtype)
    options = {"response_format": STORY} if constrained else {}

    def once() -> float:
        started = time.perf_counter()
        usage = model.chat(CHAT, max_tokens=NEW_TOKENS, temperature=0, **options).usage
        return usage.completion_tokens / (time.perf_counter() - started)

    suffix = "_constrained" if constrained else ""
    return {f"ours_{dtype}{suffix}_tok_s": _rate_of_best_run(runs, once)}


def measure_ours_llamacpp(runs: int) -> dict[str, float]:
    """Unconstrained and JSON-schema constrained, alternating in one process (this machine's
    speed drifts by 20% over minutes, so separate processes would compare drift)."""
    from adam_integrations.backends.local.llamacpp import LlamaCppModel

    model = LlamaCppModel(str(EMBEDDED_CHAT.require_path()))

    def once(**options: object) -> float:
        started = time.perf_counter()
        usage = model.chat(CHAT, max_tokens=NEW_TOKENS, temperature=0, **options).usage
        return usage.completion_tokens / (time.perf_counter() - started)

    once(), once(response_format=STORY)  # warm-up
    pairs = [(once(), once(response_format=STORY)) for _ in range(2 * runs)]
    return {"ours_llamacpp_tok_s": max(free for free, _ in pairs),
            "ours_llamacpp_constrained_tok_s": max(bound for _, bound in pairs)}


def measure_corpus(which: str, quick: bool) -> dict[str, float]:
    """The schema corpus (benchmarks/constrained.py): share of accepted schemas answered
    validly, decode tokens/s, and for ours grammar compile seconds and cache hits."""
    import constrained as corpus

    cases = corpus._cases(quick)
    result = (corpus.llama_cpp_python(cases, quick) if which == "llama_cpp_python"
              else corpus.ours(which.removeprefix("ours_"), cases))
    for name, detail in result["failures"].items():
        print(f"{which} {name}: {detail}", file=sys.stderr)
    out = {f"corpus_{which}_valid_share": result["valid"] / result["accepted_schemas"],
           f"corpus_{which}_crashes": float(result["crash"]),
           f"corpus_{which}_tok_s": result["tok_s"]}
    if "grammars" in result:
        out[f"corpus_{which}_compile_s"] = result["grammars"]["compile_seconds"]
        out[f"corpus_{which}_grammar_cache_hits"] = float(result["grammars"]["cache_hits"])
    return out


def measure_raw_transformers(dtype: str, runs: int) -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = HuggingFaceModel(str(EMBEDDED_CHAT.require_path()))._local_folder()[0]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype)).eval()
    prompt = tokenizer.apply_chat_template(CHAT, add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)

    def once() -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**prompt, max_new_tokens=NEW_TOKENS, do_sample=False)
        generated = out.shape[-1] - prompt["input_ids"].shape[-1]
        return generated / (time.perf_counter() - started)

    return {f"raw_transformers_{dtype}_tok_s": _rate_of_best_run(runs, once)}


def measure_llama_cpp(runs: int) -> dict[str, float]:
    from llama_cpp import Llama

    llama = Llama(model_path=str(EMBEDDED_CHAT.require_path()), n_ctx=2048,
                  n_threads=os.cpu_count() or 1, verbose=False)

    def once() -> float:
        started = time.perf_counter()
        out = llama.create_chat_completion(CHAT, max_tokens=NEW_TOKENS, temperature=0)
        return out["usage"]["completion_tokens"] / (time.perf_counter() - started)

    return {"llama_cpp_tok_s": _rate_of_best_run(runs, once)}


def _stream_timing(runs: int, stream: Callable[[], object]) -> dict[str, float]:
    """Best tokens/s and best time to first token over ``runs`` streamed answers;
    ``stream()`` yields one item per generated token, ``None`` for items without text."""
    rates, firsts = [], []
    for run in range(runs + 1):
        started, first, tokens = time.perf_counter(), None, 0
        for piece in stream():
            if piece and first is None:
                first = time.perf_counter() - started
            tokens += 1
        if run:  # the first run warms up
            rates.append(tokens / (time.perf_counter() - started))
            firsts.append(first or 0.0)
    return {"tok_s": max(rates), "ttft_ms": 1000 * min(firsts)}


def measure_chatadam_llamacpp_stream(runs: int) -> dict[str, float]:
    """LangChain's ChatAdam on the llama.cpp backend, streaming: what a user sees."""
    from adam_integrations.langchain import ChatAdam

    chat = ChatAdam(model="smollm2", model_type="llamacpp", temperature=0,
                    max_tokens=NEW_TOKENS)
    timing = _stream_timing(runs, lambda: (c.content for c in chat.stream(CHAT)
                                           if c.content or c.usage_metadata is None))
    return {f"chatadam_llamacpp_{k}": v for k, v in timing.items()}


def measure_chatadam_huggingface_stream(runs: int) -> dict[str, float]:
    from adam_integrations.langchain import ChatAdam

    chat = ChatAdam(model="smollm2", model_type="huggingface", temperature=0,
                    max_tokens=NEW_TOKENS)
    timing = _stream_timing(runs, lambda: (c.content for c in chat.stream(CHAT)
                                           if c.content or c.usage_metadata is None))
    return {f"chatadam_huggingface_{k}": v for k, v in timing.items()}


def measure_llama_cpp_stream(runs: int) -> dict[str, float]:
    """llama-cpp-python's own streaming chat completion on the same GGUF and threads."""
    import psutil
    from llama_cpp import Llama

    llama = Llama(model_path=str(EMBEDDED_CHAT.require_path()), n_ctx=8192,
                  n_threads=psutil.cpu_count(logical=False) or 1, verbose=False)

    def stream() -> object:
        for chunk in llama.create_chat_completion(CHAT, max_tokens=NEW_TOKENS, temperature=0,
                                                  stream=True):
            delta = chunk["choices"][0]["delta"]
            if "content" in delta:
                yield delta["content"]

    return {f"llama_cpp_stream_{k}": v for k, v in _stream_timing(runs, stream).items()}


def measure_server_chatollama_stream(runs: int) -> dict[str, float]:
    """LangChain's ChatOllama streaming through ``adam serve`` (same model and settings
    as the in-process ChatAdam measurement)."""
    from langchain_ollama import ChatOllama

    with AdamServe() as url:
        chat = ChatOllama(model="smollm2:135m", base_url=url, temperature=0,
                          num_predict=NEW_TOKENS)
        timing = _stream_timing(runs, lambda: (c.content for c in chat.stream(CHAT)
                                               if c.content or not c.response_metadata))
    return {f"server_chatollama_{k}": v for k, v in timing.items()}


def measure_openai_compat_stream(runs: int) -> dict[str, float]:
    """Streaming from llama-cpp-python's OpenAI-compatible server: our
    OpenAI-compatible backend against the ``openai`` client called directly, alternating
    run by run on the same server (so drift hits both alike)."""
    import openai

    from adam_integrations.backends.remote.openai_compat import LlamaServerModel

    with LlamaCppPythonServer(str(EMBEDDED_CHAT.require_path())) as url:
        client = openai.OpenAI(base_url=url, api_key="-")
        ours = LlamaServerModel(f"smollm2@{url}")

        def direct() -> object:
            for part in client.chat.completions.create(
                    model="smollm2", messages=CHAT, max_tokens=NEW_TOKENS, temperature=0,
                    stream=True):
                if part.choices and part.choices[0].delta.content:
                    yield part.choices[0].delta.content

        def through_backend() -> object:
            for chunk in ours.stream_chat(CHAT, max_tokens=NEW_TOKENS, temperature=0):
                if chunk.text:
                    yield chunk.text

        timings: dict[str, list[dict[str, float]]] = {"direct": [], "backend": []}
        for _ in range(max(runs, 8)):
            timings["direct"].append(_stream_timing(1, direct))
            timings["backend"].append(_stream_timing(1, through_backend))
    return {f"openai_{name}_{key}": (max if key == "tok_s" else min)(t[key] for t in runs_)
            for name, runs_ in timings.items() for key in ("tok_s", "ttft_ms")}


def measure_server_concurrency(seconds: float) -> dict[str, float]:
    """8 streaming clients (the official ollama package) for ``seconds``: answers
    completed, errors, answers that ended without their done line, tokens/s overall."""
    import concurrent.futures

    import ollama

    def client_loop(url: str, index: int) -> tuple[int, int, int, int]:
        client = ollama.Client(host=url)
        done = errors = incomplete = tokens = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                parts = list(client.chat(
                    model="smollm2:135m", stream=True,
                    options={"num_predict": 64, "temperature": 0.7, "seed": index},
                    messages=[{"role": "user", "content": f"Tell story number {index}."}]))
            except Exception:
                errors += 1
                continue
            if parts and parts[-1].done and parts[-1].done_reason in ("stop", "length"):
                done += 1
                tokens += parts[-1].eval_count or 0
            else:
                incomplete += 1
        return done, errors, incomplete, tokens

    with AdamServe() as url:
        ollama.Client(host=url).chat(model="smollm2:135m", options={"num_predict": 1},
                                     messages=[{"role": "user", "content": "hi"}])
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: client_loop(url, i), range(8)))
        elapsed = time.perf_counter() - started
    return {"concurrent8_answers": sum(r[0] for r in results),
            "concurrent8_errors": sum(r[1] for r in results),
            "concurrent8_incomplete": sum(r[2] for r in results),
            "concurrent8_tok_s": sum(r[3] for r in results) / elapsed,
            "concurrent8_seconds": elapsed}


def embedding_texts(count: int = 1000) -> list[str]:
    rng = random.Random(0)
    words = [
        "model", "data", "vector", "search", "local", "fast", "query", "index", "answer",
        "token", "language", "graph", "retrieval", "context", "memory", "chunk", "document",
        "embed", "python", "agent", "tool",
    ]
    return [" ".join(rng.choice(words) for _ in range(rng.choice([3, 8, 20, 60, 150, 300])))
            for _ in range(count)]


def _texts_per_second(embed: Callable[[list[str]], object], count: int) -> float:
    texts = embedding_texts(count)
    embed(texts[:16])  # warm-up
    started = time.perf_counter()
    embed(texts)
    return len(texts) / (time.perf_counter() - started)


def measure_embeddings(which: str, count: int) -> dict[str, float]:
    folder = str(EMBEDDED_EMBEDDING.require_path())
    if which == "ours":  # the default: bf16 (autocast) on CPUs with native bf16, else fp32
        embed = HuggingFaceModel(folder).embed
    elif which == "ours_fp32":
        embed = HuggingFaceModel(folder, dtype="float32").embed
    elif which == "ours_int8":
        model = HuggingFaceModel(folder, quantized=True)
        model.load()  # the export and quantization (first run only) is not timed
        embed = model.embed
    elif which == "sentence_transformers":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(folder, device="cpu")

        def embed(texts: list[str]) -> object:
            return model.encode(texts, batch_size=32)
    elif which == "langchain_huggingface":
        from langchain_huggingface import HuggingFaceEmbeddings

        embed = HuggingFaceEmbeddings(model_name=folder).embed_documents
    else:
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding

        embed = HuggingFaceEmbedding(model_name=folder, device="cpu").get_text_embedding_batch
    return {f"{which}_texts_s": _texts_per_second(embed, count)}


def measure_embedding_quality(count: int) -> dict[str, float]:
    """How far the default (bf16 where native) and int8 vectors are from fp32 over the
    benchmark's texts: the worst cosine, and how many of each query's 5 nearest documents
    (100 queries over ``count`` documents) are the ones fp32 finds."""
    import numpy as np

    folder = str(EMBEDDED_EMBEDDING.require_path())
    documents = embedding_texts(count)
    rng = random.Random(2)
    queries = [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 8)))
               for _ in range(100)]
    vectors = {}
    for name, options in (("fp32", {"dtype": "float32"}), ("default", {}),
                          ("int8", {"quantized": True})):
        model = HuggingFaceModel(folder, **options)
        vectors[name] = (np.array(model.embed(documents)), np.array(model.embed(queries)))
        if name == "default":
            default_dtype = model.info().dtype
        model.unload()

    def top5(docs: np.ndarray, asked: np.ndarray) -> np.ndarray:
        return np.argsort(-(asked @ docs.T), axis=1)[:, :5]

    exact = top5(*vectors["fp32"])
    result: dict[str, float] = {"quality_default_is_bf16": float(default_dtype == "bfloat16")}
    for name in ("default", "int8"):
        docs, asked = vectors[name]
        result[f"quality_{name}_min_cosine"] = float((docs * vectors["fp32"][0]).sum(1).min())
        found = top5(docs, asked)
        result[f"quality_{name}_top5_agreement"] = float(np.mean(
            [len(set(a) & set(b)) / 5 for a, b in zip(found, exact, strict=True)]))
    return result


def measure_indexing(which: str, count: int) -> dict[str, float]:
    """Seconds to build a LlamaIndex VectorStoreIndex over ``count`` short documents."""
    from llama_index.core import Document, VectorStoreIndex

    folder = str(EMBEDDED_EMBEDDING.require_path())
    if which == "ours":
        from adam_integrations.llama_index import AdamEmbedding

        embed_model = AdamEmbedding(model=folder)
    else:
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding

        embed_model = HuggingFaceEmbedding(model_name=folder, device="cpu")
    rng = random.Random(1)
    documents = [Document(text=" ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 30))))
                 for _ in range(count)]
    embed_model.get_text_embedding("warm-up")
    started = time.perf_counter()
    VectorStoreIndex.from_documents(documents, embed_model=embed_model)
    return {f"index_{which}_s": time.perf_counter() - started}


_WORDS = ["model", "data", "vector", "search", "local", "fast", "query", "index", "answer",
          "token", "language", "graph", "retrieval", "context", "memory", "chunk"]


def measurements(runs: int, count: int) -> dict[str, Callable[[], dict[str, float]]]:
    """Every measurement by name; each runs in a fresh process (see ``main``)."""
    return {
        "load": measure_load,
        "ours_float32": lambda: measure_ours("float32", runs),
        "ours_bfloat16": lambda: measure_ours("bfloat16", runs),
        "ours_bfloat16_constrained": lambda: measure_ours("bfloat16", runs, constrained=True),
        "raw_float32": lambda: measure_raw_transformers("float32", runs),
        "raw_bfloat16": lambda: measure_raw_transformers("bfloat16", runs),
        "llama_cpp": lambda: measure_llama_cpp(runs),
        "ours_llamacpp": lambda: measure_ours_llamacpp(runs),
        **{f"corpus_{name}": (lambda name=name: measure_corpus(name, runs == 1))
           for name in ("ours_llamacpp", "ours_huggingface", "llama_cpp_python")},
        "llama_cpp_stream": lambda: measure_llama_cpp_stream(runs),
        "chatadam_llamacpp_stream": lambda: measure_chatadam_llamacpp_stream(runs),
        "chatadam_huggingface_stream": lambda: measure_chatadam_huggingface_stream(runs),
        "server_chatollama_stream": lambda: measure_server_chatollama_stream(runs),
        "openai_compat_stream": lambda: measure_openai_compat_stream(runs),
        "server_concurrency": lambda: measure_server_concurrency(60.0 if runs > 1 else 10.0),
        **{f"embed_{name}": (lambda name=name: measure_embeddings(name, count))
           for name in ("ours", "ours_fp32", "ours_int8", "sentence_transformers",
                        "langchain_huggingface", "llama_index")},
        "embed_quality": lambda: measure_embedding_quality(count),
        "index_ours": lambda: measure_indexing("ours", count),
        "index_llama_index": lambda: measure_indexing("llama_index", count),
    }


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
        "constrained (JSON schema) vs unconstrained, bf16": ("ours_bfloat16_constrained_tok_s",
                                                             "ours_bfloat16_tok_s"),
        "constrained (JSON schema) vs unconstrained, llama.cpp": (
            "ours_llamacpp_constrained_tok_s", "ours_llamacpp_tok_s"),
        "schema corpus, valid answers: ours on llama.cpp vs llama-cpp-python response_format": (
            "corpus_ours_llamacpp_valid_share", "corpus_llama_cpp_python_valid_share"),
        "schema corpus, valid answers: ours on transformers vs llama-cpp-python": (
            "corpus_ours_huggingface_valid_share", "corpus_llama_cpp_python_valid_share"),
        "schema corpus, decode tok/s: ours on llama.cpp vs llama-cpp-python": (
            "corpus_ours_llamacpp_tok_s", "corpus_llama_cpp_python_tok_s"),
        "chat bf16 vs llama.cpp": ("ours_bfloat16_tok_s", "llama_cpp_tok_s"),
        "chat, our llamacpp backend vs llama-cpp-python's own chat": ("ours_llamacpp_tok_s",
                                                                      "llama_cpp_tok_s"),
        "ChatAdam streaming on llama.cpp vs llama-cpp-python streaming": (
            "chatadam_llamacpp_tok_s", "llama_cpp_stream_tok_s"),
        "ChatAdam streaming, llama.cpp backend vs transformers backend (bf16)": (
            "chatadam_llamacpp_tok_s", "chatadam_huggingface_tok_s"),
        "ChatOllama through adam serve vs in-process ChatAdam, streaming": (
            "server_chatollama_tok_s", "chatadam_llamacpp_tok_s"),
        "OpenAI-compatible backend vs the openai client, streaming from llama_cpp.server": (
            "openai_backend_tok_s", "openai_direct_tok_s"),
        "cached load speed-up vs first load": ("load_first_s", "load_cached_s"),
        "embeddings vs sentence-transformers": ("ours_texts_s",
                                                "sentence_transformers_texts_s"),
        "embeddings fp32 (dtype=float32) vs sentence-transformers": (
            "ours_fp32_texts_s", "sentence_transformers_texts_s"),
        "embeddings int8 (quantized=True) vs sentence-transformers": (
            "ours_int8_texts_s", "sentence_transformers_texts_s"),
        "embeddings vs langchain-huggingface": ("ours_texts_s",
                                                "langchain_huggingface_texts_s"),
        "VectorStoreIndex over 1,000 short documents: HuggingFaceEmbedding time / ours": (
            "index_llama_index_s", "index_ours_s"),
        "embeddings vs LlamaIndex HuggingFaceEmbedding": ("ours_texts_s",
                                                          "llama_index_texts_s"),
    }
    return {name: r[a] / r[b] for name, (a, b) in pairs.items() if a in r and b in r and r[b]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run each, 200 texts")
    parser.add_argument("--match", help="only the measurements whose name contains this "
                        "(e.g. embed, index, stream)")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: one measurement
    args = parser.parse_args()
    runs, count = (1, 200) if args.quick else (3, 1000)
    table = measurements(runs, count)
    if args.only:
        print(json.dumps(table[args.only]()))
        return 0
    if args.match:
        table = {name: measure for name, measure in table.items() if args.match in name}
    # Each measurement runs in its own process: torch's CPU thread pools of one contender
    # would otherwise slow down the next (see adam_integrations/backends/local/compute.py).
    results: dict[str, float] = {}
    for name in table:
        command = [sys.executable, __file__, "--only", name, *(["--quick"] if args.quick else [])]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"  {name}: skipped ({done.stderr.strip().splitlines()[-1:]})")
            continue
        results.update(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  {name}: done", flush=True)
    summary = ratios(results)
    if "chatadam_llamacpp_ttft_ms" in results and "llama_cpp_stream_ttft_ms" in results:
        summary["TTFT difference, ChatAdam on llama.cpp - llama-cpp-python (ms)"] = (
            results["chatadam_llamacpp_ttft_ms"] - results["llama_cpp_stream_ttft_ms"])
    print("\nmeasurements:")
    for key, value in results.items():
        print(f"  {key:<40} {value:10.4f}" if key.startswith("quality_") else
              f"  {key:<40} {value:10.2f}")
    print("\nratios (>1 means adam-integrations is faster):")
    for key, value in summary.items():
        unit = "" if key.endswith("(ms)") else "x"
        print(f"  {key:<48} {value:6.2f}{unit}")
    out = Path(__file__).parent / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"measurements": results, "ratios": summary,
                               "python": sys.version, "cpu_count": os.cpu_count()}, indent=2))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
