"""Constrained decoding on the schema corpus (tests/fixtures/schema_corpus.py): compliance and
speed of our backends against llama-cpp-python's own ``response_format`` (what llama.cpp's
server and Ollama users get), on the same model, prompts and budget.

    .venv/bin/python benchmarks/constrained.py [--quick]     # also part of make bench

For each contender: answers valid for their schema, refusals of the schemas meant to be
refused, wrong answers (invalid JSON or schema), crashes (an exception that is not ours, or
a dead process), decode tokens/s, and for ours the grammar compile time and cache hits.
llama-cpp-python runs in a child process that is restarted after a crash (one schema of
the corpus has killed it with a segfault), the crash counted against the schema.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.schema_corpus import CORPUS, Case, problems, prompt  # noqa: E402

MAX_TOKENS = 96


def _outcome(case: Case, run: Any) -> dict[str, Any]:
    """Run one case; the outcome as a dict (kind: valid/refused/wrong/crash)."""
    from adam_integrations.core.errors import AdamError

    started = time.perf_counter()
    try:
        text, tokens = run(case)
    except AdamError as error:
        return {"kind": "refused", "detail": str(error)[:100]}
    except Exception as error:  # what a user would see from a dependency
        return {"kind": "crash", "detail": f"{type(error).__name__}: {error}"[:100]}
    seconds = time.perf_counter() - started
    wrong = problems(case, text)
    return {"kind": "wrong" if wrong else "valid", "tokens": tokens, "seconds": seconds,
            "detail": wrong[0][:100] if wrong else ""}


def ours(backend: str, cases: list[Case]) -> dict[str, Any]:
    if backend == "llamacpp":
        from adam_integrations.backends.local.llamacpp import LlamaCppModel
        model: Any = LlamaCppModel("smollm2")
    else:
        from adam_integrations.backends.local.huggingface import HuggingFaceModel
        model = HuggingFaceModel("smollm2")
    model.load()

    def run(case: Case) -> tuple[str, int]:
        completion = model.chat(prompt(case), response_format=case.schema, temperature=0.0,
                                max_tokens=MAX_TOKENS)
        return completion.text, completion.usage.completion_tokens

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcomes = [_outcome(case, run) for case in cases]
    loaded = model._ensure_loaded()
    return _summary(cases, outcomes, grammars=loaded.grammars.stats())


def llama_cpp_python_worker(start: int, quick: bool) -> None:
    """Child process: llama-cpp-python's response_format on cases from ``start``, one JSON
    line per case (so the parent knows where a crash happened)."""
    from llama_cpp import Llama

    from adam_integrations.catalog.embedded import EMBEDDED_CHAT

    llama = Llama(model_path=str(EMBEDDED_CHAT.require_path()), n_ctx=4096, verbose=False)

    def run(case: Case) -> tuple[str, int]:
        out = llama.create_chat_completion(
            prompt(case), max_tokens=MAX_TOKENS, temperature=0.0,
            response_format={"type": "json_object", "schema": case.schema})
        return out["choices"][0]["message"]["content"], out["usage"]["completion_tokens"]

    for case in _cases(quick)[start:]:
        print(json.dumps(_outcome(case, run)), flush=True)


def llama_cpp_python(cases: list[Case], quick: bool) -> dict[str, Any]:
    outcomes: list[dict[str, Any]] = []
    while len(outcomes) < len(cases):
        done = subprocess.run([sys.executable, __file__, "--worker", str(len(outcomes)),
                               *(["--quick"] if quick else [])],
                              capture_output=True, text=True, check=False)
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        outcomes.extend(lines)
        if done.returncode != 0 and len(outcomes) < len(cases):
            outcomes.append({"kind": "crash", "detail": f"process died ({done.returncode})"})
    return _summary(cases, outcomes)


def _summary(cases: list[Case], outcomes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    accepted = [c.expect != "refused" for c in cases]
    kinds = [o["kind"] for o in outcomes]
    tokens = sum(o.get("tokens", 0) for o in outcomes)
    seconds = sum(o.get("seconds", 0.0) for o in outcomes)
    return {
        "valid": sum(k == "valid" for k, a in zip(kinds, accepted, strict=True) if a),
        "accepted_schemas": sum(accepted),
        "refused_as_expected": sum(k == "refused" for k, a in zip(kinds, accepted, strict=True)
                                   if not a),
        "schemas_to_refuse": len(cases) - sum(accepted),
        "wrong": kinds.count("wrong"), "crash": kinds.count("crash"),
        "refused_wrongly": sum(k == "refused" for k, a in zip(kinds, accepted, strict=True)
                               if a),
        "tok_s": tokens / seconds if seconds else 0.0,
        "failures": {c.name: o["detail"] for c, o in zip(cases, outcomes, strict=True)
                     if o["kind"] in ("wrong", "crash")},
        **extra,
    }


def _cases(quick: bool) -> list[Case]:
    return CORPUS[::4] if quick else CORPUS


def main() -> int:
    quick = "--quick" in sys.argv
    if "--worker" in sys.argv:
        llama_cpp_python_worker(int(sys.argv[sys.argv.index("--worker") + 1]), quick)
        return 0
    cases = _cases(quick)
    which = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    contenders = {"ours_llamacpp": lambda: ours("llamacpp", cases),
                  "ours_huggingface": lambda: ours("huggingface", cases),
                  "llama_cpp_python": lambda: llama_cpp_python(cases, quick)}
    results = {name: run() for name, run in contenders.items() if which in (None, name)}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
