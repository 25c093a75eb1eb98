"""The documentation: README.md is the front door and docs/ the pages behind it, built as
a site with MkDocs (``make docs``). The site builds with every link and page resolving
(``mkdocs build --strict``), and every Python snippet in it is Python (the front door's
are also run: tests/integration/test_readme.py)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SNIPPET = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def snippets(page: Path) -> list[str]:
    """The page's Python blocks, in order (indented ones, in list items, dedented)."""
    return [textwrap.dedent(re.sub(f"^{indent}", "", block, flags=re.MULTILINE))
            for indent, block in SNIPPET.findall(page.read_text(encoding="utf-8"))]


def test_the_site_builds_with_every_link_resolving(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "docs" / "make_index.py")], check=True,
                   capture_output=True)
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(tmp_path / "site")], cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "langchain" / "index.html").is_file()


def test_the_front_door_links_every_page_and_every_page_is_in_the_site():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {p.name for p in PAGES[1:] if p.name != "index.md"}
    assert pages == set(re.findall(r"\]\(docs/([a-z-]+\.md)\)", readme))
    assert pages == set(re.findall(r": ([a-z-]+\.md)$", config, re.MULTILINE)) - {"index.md"}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_python_snippet_is_python(page):
    for snippet in snippets(page):
        ast.parse(snippet, filename=str(page))
