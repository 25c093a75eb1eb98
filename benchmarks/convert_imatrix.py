"""``adam convert`` and ``adam imatrix`` against llama.cpp's own ``convert_hf_to_gguf.py``
and ``llama-imatrix``, from the same llama-cpp-python sdist.

    .venv/bin/python benchmarks/convert_imatrix.py [--rounds 3]

Convert: a checkpoint of Qwen3-0.6B's shape (28 layers, hidden 1024, its real
151,936-token tokenizer and template from the test fixtures; random bf16 weights, since
real ones cannot be downloaded here; built once into the benchmark cache), written as an
F16 GGUF by both converters (median seconds over the rounds); the tensors are compared
one by one. (llama.cpp's converter does not take the SmolLM2 checkpoint below: its
tokenizer, as transformers wrote it from the GGUF, is not one it recognises.)
Importance matrix, on the embedded SmolLM2 as a transformers folder (what the
transformers backend converts the GGUF to): both
compute one over transformers' README (chunks of 512, from the F16 GGUF), each is used to
quantize the F16 GGUF to Q3_K_S with ``adam quantize``, and the results' perplexity over
text neither saw (pydantic's README) is computed by ``llama-perplexity``, with a Q3_K_S
made without a matrix beside them. ``make qwen3-parts`` keeps the converter;
``benchmarks/llama_server_build.py`` builds the tools. Results are printed and written to
``benchmarks/results/convert-imatrix-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llama_server_build import llama_tool  # benchmarks/, the script's own folder
from quantize_eval import llama_perplexity

from adam_integrations.backends.local.huggingface.gguf_conversion import converted_gguf
from adam_integrations.catalog.embedded import EMBEDDED_CHAT
from adam_integrations.tools import convert, importance_matrix, quantize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fixtures.qwen3_parts import find_parts

QWEN3_06B_SHAPE = {"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
                   "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
                   "max_position_embeddings": 40_960, "rope_theta": 1_000_000.0,
                   "tie_word_embeddings": True}
"""Qwen3-0.6B's config.json (the values ``catalog/qwen3.py`` cites for it)."""


def qwen3_shaped_checkpoint(fixture_folder: Path) -> Path:
    """A random-weight bf16 checkpoint of Qwen3-0.6B's shape with the fixture's real
    tokenizer, built once."""
    import shutil

    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    target = Path.home() / ".cache" / "adam-integrations" / "bench" / "qwen3-0.6b-shape"
    if (target / "model.safetensors").is_file():
        return target
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=151_936, **QWEN3_06B_SHAPE)
    Qwen3ForCausalLM(config).to(torch.bfloat16).save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(fixture_folder / name, target / name)
    return target


def tensors(path: Path) -> dict[str, bytes]:
    import gguf

    return {t.name: bytes(t.data.tobytes()) for t in gguf.GGUFReader(str(path)).tensors}


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    parts = find_parts()
    if parts is None:
        print("llama.cpp's converter is not cached: run `make qwen3-parts` first")
        return 1
    perplexity_tool, imatrix_tool = llama_tool("llama-perplexity"), llama_tool("llama-imatrix")
    work = Path(tempfile.mkdtemp(prefix="adam-convert-bench-"))
    text, held_out = work / "text.md", work / "held-out.md"
    text.write_text(importlib.metadata.metadata("transformers").get_payload(), encoding="utf-8")
    held_out.write_text(importlib.metadata.metadata("pydantic").get_payload(), encoding="utf-8")
    from tests.fixtures.qwen3_models import build
    from tests.integration.conftest import FIXTURE_CACHE

    shaped = qwen3_shaped_checkpoint(build(parts, FIXTURE_CACHE).dense_folder)
    environment = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}
    ours_s, theirs_s = [], []
    for r in range(args.rounds):
        ours_s.append(timed(lambda r=r: convert(shaped, "f16", output=work / f"ours-{r}.gguf",
                                                progress=False)))
        theirs_s.append(timed(lambda r=r: subprocess.run(
            [sys.executable, str(parts.converter), str(shaped), "--outfile",
             str(work / f"theirs-{r}.gguf"), "--outtype", "f16"], capture_output=True,
            check=True, env=environment)))
        for name in (f"ours-{r}.gguf", f"theirs-{r}.gguf"):
            if r:
                (work / name).unlink()  # 1.2 GB each: keep the first pair only
    ours, theirs = tensors(work / "ours-0.gguf"), tensors(work / "theirs-0.gguf")
    same = sum(ours.get(name) == data for name, data in theirs.items())
    row_convert = {
        "convert_s": statistics.median(ours_s),
        "convert_hf_to_gguf_s": statistics.median(theirs_s),
        "tensors": len(theirs), "tensors_identical": same,
        "only_ours": sorted(set(ours) - set(theirs)),
        "only_theirs": sorted(set(theirs) - set(ours))}
    del ours, theirs
    for name in ("ours-0.gguf", "theirs-0.gguf"):
        (work / name).unlink()

    checkpoint, _ = converted_gguf(EMBEDDED_CHAT.require_path())
    f16 = convert(checkpoint, "f16", output=work / "smollm2-f16.gguf", progress=False).path
    ours_m, theirs_m = [], []
    for r in range(args.rounds):
        ours_m.append(timed(lambda r=r: importance_matrix(
            checkpoint, text.read_text(encoding="utf-8"), output=work / f"imatrix-ours-{r}.gguf",
            progress=False)))
        theirs_m.append(timed(lambda r=r: subprocess.run(
            [str(imatrix_tool), "-m", str(f16), "-f", str(text), "-c", "512", "-o",
             str(work / f"imatrix-theirs-{r}.gguf"), "--no-ppl"], capture_output=True,
            check=True)))
    held = {}
    for name, matrix in (("none", None), ("ours", work / "imatrix-ours-0.gguf"),
                         ("llama-imatrix", work / "imatrix-theirs-0.gguf")):
        quantized = quantize(f16, "Q3_K_S", output=work / f"q3-{name}.gguf", imatrix=matrix,
                             progress=False).path
        held[name] = llama_perplexity(perplexity_tool, quantized, held_out)
    row_imatrix = {"imatrix_s": statistics.median(ours_m),
                   "llama_imatrix_s": statistics.median(theirs_m),
                   "q3_k_s_held_out_perplexity": held}

    print(f"convert F16 (Qwen3-0.6B shape): ours {row_convert['convert_s']:.2f} s, "
          f"convert_hf_to_gguf.py {row_convert['convert_hf_to_gguf_s']:.2f} s "
          f"({row_convert['convert_s'] / row_convert['convert_hf_to_gguf_s']:.2f}x); "
          f"{same}/{row_convert['tensors']} tensors identical")
    print(f"imatrix: ours {row_imatrix['imatrix_s']:.2f} s, llama-imatrix "
          f"{row_imatrix['llama_imatrix_s']:.2f} s; Q3_K_S perplexity on held-out text: "
          + ", ".join(f"{k} {v:.4f}" for k, v in held.items()))
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    out = folder / f"convert-imatrix-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"convert": row_convert, "imatrix": row_imatrix}, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
