"""``adam quantize`` and ``adam eval`` against llama.cpp's own ``llama-quantize`` and
``llama-perplexity``, built from the same sources (``benchmarks/llama_server_build.py``).

    .venv/bin/python benchmarks/quantize_eval.py [--rounds 3]

The embedded SmolLM2, written back to F16 by llama.cpp's quantizer, is quantized to Q8_0
and Q4_K_M both ways (median seconds over the rounds; the outputs must be the same bytes:
the same code runs), and each result's perplexity over transformers' README (from its
package metadata, a real text on every machine with the dependencies; chunks of 512) is
computed both ways: ``tools.evaluate`` must agree with ``llama-perplexity`` within 1%.
Results are printed and written to ``benchmarks/results/quantize-eval-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llama_server_build import llama_tool  # benchmarks/, the script's own folder

from adam_integrations.catalog.embedded import EMBEDDED_CHAT
from adam_integrations.tools import evaluate, quantize

TYPES = ("Q8_0", "Q4_K_M")
CONTEXT = 512


def llama_perplexity(binary: Path, model: Path, text: Path) -> float:
    done = subprocess.run([str(binary), "-m", str(model), "-f", str(text), "-c", str(CONTEXT),
                           "-b", str(CONTEXT)], capture_output=True, text=True, check=True)
    found = re.search(r"Final estimate: PPL = ([0-9.]+)", done.stdout + done.stderr)
    if found is None:
        raise RuntimeError(f"llama-perplexity printed no estimate:\n{done.stderr[-2000:]}")
    return float(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    quantizer, perplexity = llama_tool("llama-quantize"), llama_tool("llama-perplexity")
    work = Path(tempfile.mkdtemp(prefix="adam-quantize-bench-"))
    text = work / "text.md"
    text.write_text(importlib.metadata.metadata("transformers").get_payload(),
                    encoding="utf-8")
    f16 = quantize(EMBEDDED_CHAT.require_path(), "F16", output=work / "f16.gguf",
                   allow_requantize=True, progress=False).path
    rows = {}
    for kind in TYPES:
        ours, theirs = [], []
        for r in range(args.rounds):
            started = time.perf_counter()
            mine = quantize(f16, kind, output=work / f"ours-{kind}-{r}.gguf",
                            progress=False).path
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            subprocess.run([str(quantizer), str(f16), str(work / f"theirs-{kind}-{r}.gguf"),
                            kind], capture_output=True, check=True)
            theirs.append(time.perf_counter() - started)
        same = mine.read_bytes() == (work / f"theirs-{kind}-0.gguf").read_bytes()
        [ours_eval] = evaluate([mine], text.read_text(encoding="utf-8"), context=CONTEXT)
        theirs_ppl = llama_perplexity(perplexity, mine, text)
        rows[kind] = {"quantize_s": statistics.median(ours),
                      "llama_quantize_s": statistics.median(theirs), "same_bytes": same,
                      "perplexity": ours_eval.perplexity, "llama_perplexity": theirs_ppl,
                      "scored_tokens": ours_eval.scored_tokens}
    print(f"{'type':<8} {'quantize s':>10} {'llama-quantize s':>16} {'same bytes':>10} "
          f"{'perplexity':>10} {'llama-perplexity':>16} {'ratio':>7}")
    for kind, row in rows.items():
        row["perplexity_ratio"] = row["perplexity"] / row["llama_perplexity"]
        print(f"{kind:<8} {row['quantize_s']:10.2f} {row['llama_quantize_s']:16.2f} "
              f"{row['same_bytes']!s:>10} {row['perplexity']:10.4f} "
              f"{row['llama_perplexity']:16.4f} {row['perplexity_ratio']:7.4f}")
    print("goal: perplexity within 1% of llama-perplexity's")
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    out = folder / f"quantize-eval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
