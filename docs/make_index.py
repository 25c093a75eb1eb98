"""docs/index.md from README.md: the front door, its links made relative to docs/
(``docs/python.md`` -> ``python.md``). Run by ``make docs`` and tests/unit/test_docs.py."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> Path:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    index = ROOT / "docs" / "index.md"
    index.write_text(re.sub(r"\]\(docs/", "](", text), encoding="utf-8")
    return index


if __name__ == "__main__":
    print(main())
