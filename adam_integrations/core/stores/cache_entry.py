"""Cache folders written whole or not at all (the GGUF conversions, the int8 ONNX exports).

An entry is written into a staging folder beside it and renamed into place, its marker
file written last: a reader that finds the marker finds everything, and a half-written
entry is never used. Two processes writing the same entry both end with one. ``replace``
swaps out an entry that no longer loads; the old one is first moved aside in one rename,
so no reader ever sees it half deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def is_complete(entry: Path, marker: str) -> bool:
    """Whether ``entry`` was written whole (its marker is there)."""
    return (entry / marker).exists()


@contextmanager
def writing_entry(entry: Path, marker: str, about: dict[str, Any], *,
                  replace: bool = False) -> Iterator[Path]:
    """Yield a staging folder to fill; when the block ends without an error, write the
    marker (``about`` and the time, as JSON) and rename the folder to ``entry``."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name[:16]}-"))
    try:
        yield staging
        (staging / marker).write_text(json.dumps({**about, "written_at": time.time()}))
        if replace:
            _discard(entry)
        try:
            os.replace(staging, entry)
        except OSError:  # another process finished the same entry first
            if not is_complete(entry, marker):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _discard(entry: Path) -> None:
    if not entry.exists():
        return
    trash = entry.with_name(f".{entry.name}-discarded-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.replace(entry, trash)
    except OSError:
        return  # another process replaced it first
    shutil.rmtree(trash, ignore_errors=True)
