"""Every Python snippet in docs/ runs as written, in order per page, in one namespace per
page, as a reader pastes them (the README's: test_readme.py; docs/index.md is the README).

Two stand-ins, each in plain sight: ``http://127.0.0.1:11434`` (``adam serve``'s default
address) is the test session's ``adam serve``, and ``"qwen3_small"`` (which is not on a
machine without the hub) is the Qwen3 test fixture: the official template and vocabulary
on random weights. Remote servers' addresses (``gpu-box``) are only written into
references, which connect on first use."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_docs import ROOT, snippets

PAGES = sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "index.md"
               and snippets(p))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_python_snippet_on_the_page_runs_in_order(page: Path, server, qwen3, tmp_path,
                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)  # files the snippets write land here
    stand_ins = {"http://127.0.0.1:11434": server, '"qwen3_small"': f'"{qwen3.dense_gguf}"'}
    namespace: dict[str, object] = {"__name__": page.stem.replace("-", "_")}
    for block in snippets(page):
        for text, stand_in in stand_ins.items():
            block = block.replace(text, stand_in)
        exec(compile(block, str(page), "exec"), namespace)
