"""The README's Python runs as written, top to bottom, on the embedded models (the
snippets of the front door, in order, in one namespace, as a reader pastes them)."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_docs import snippets

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_front_doors_python_runs_as_written(capsys):
    namespace: dict[str, object] = {"__name__": "readme"}
    blocks = snippets(README)
    assert len(blocks) >= 4  # Python, LangChain, LlamaIndex, scaling out
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "embedded default" in printed  # the explanation says which model and why
    assert printed.count("384") == 2  # both frameworks' embedders, 384 dimensions
    assert namespace["vector"] and len(namespace["vector"]) == 384
