"""The pick's decode-speed estimate against llama.cpp's measured speed on this machine.

    .venv/bin/python benchmarks/speed_estimate.py     (after `make qwen3-parts`)

For the embedded SmolLM2 GGUF and the Qwen3 fixtures (tests/fixtures/qwen3_models.py):
bytes read per token from the GGUF's tensors (every weight but the token embedding, which
is read one row at a time unless the output layer is tied to it; a MoE reads only the
experts it uses), the estimate of ``catalog.selection.cpu_decode_speed`` from the measured
RAM bandwidth, and the best of three 64-token greedy decodes. Goal: within 30%.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gguf

from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.catalog.embedded import EMBEDDED_CHAT
from adam_integrations.catalog.selection import cpu_decode_speed
from adam_integrations.core.hardware import memory_bandwidth
from tests.fixtures.qwen3_models import build
from tests.fixtures.qwen3_parts import FETCH_COMMAND, find_parts

FIXTURES = Path.home() / ".cache" / "adam-integrations" / "test-fixtures"


def bytes_per_token(path: Path) -> tuple[float, int, int]:
    """Bytes read per generated token, layers and vocabulary size of a GGUF."""
    reader = gguf.GGUFReader(str(path))
    tensors = {t.name: int(t.n_bytes) for t in reader.tensors}
    read = sum(size for name, size in tensors.items() if name != "token_embd.weight")
    if "output.weight" not in tensors:  # tied: the output layer reads the embedding
        read += tensors["token_embd.weight"]
    architecture = str(reader.fields["general.architecture"].contents())
    experts = reader.fields.get(f"{architecture}.expert_count")
    if experts is not None:
        used = int(reader.fields[f"{architecture}.expert_used_count"].contents())
        stacked = sum(size for name, size in tensors.items() if "_exps" in name)
        read -= stacked * (1 - used / int(experts.contents()))
    layers = int(reader.fields[f"{architecture}.block_count"].contents())
    vocabulary = len(reader.fields["tokenizer.ggml.tokens"].data)
    return read, layers, vocabulary


def measured_speed(path: Path, think: bool | None) -> float:
    model = LlamaCppModel(str(path))
    try:
        model.chat([{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0)
        best = 0.0
        for _ in range(3):
            usage = model.chat([{"role": "user", "content": "Write a long story."}],
                               max_tokens=64, temperature=0, think=think).usage
            best = max(best, usage.completion_tokens / usage.completion_seconds)
        return best
    finally:
        model.unload()


def main() -> int:
    parts = find_parts()
    if parts is None:
        print(f"the Qwen3 parts are not cached; run {FETCH_COMMAND}")
        return 1
    fixtures = build(parts, FIXTURES)
    bandwidth = memory_bandwidth() or 0.0
    print(f"RAM read bandwidth: {bandwidth / 1e9:.1f} GB/s\n")
    print("| model | bytes per token | estimated tok/s | measured tok/s | measured / estimate |")
    print("|---|---|---|---|---|")
    for name, path, think in (("SmolLM2-135M Q4_1 (embedded)", EMBEDDED_CHAT.require_path(),
                               None),
                              ("qwen3 fixture (f32)", fixtures.dense_gguf, False),
                              ("qwen3moe fixture (f32, 2 of 4 experts)", fixtures.moe_gguf,
                               False)):
        read, layers, vocabulary = bytes_per_token(path)
        estimate = cpu_decode_speed(read, layers, vocabulary, bandwidth)
        measured = measured_speed(path, think)
        print(f"| {name} | {read / 1e6:.1f} MB | {estimate:.0f} | {measured:.0f} | "
              f"{measured / estimate:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
