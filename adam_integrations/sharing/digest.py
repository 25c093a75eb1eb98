"""sha256 of model files, computed once per file version and remembered.

A weight file is identified by its content hash everywhere in this package (the GGUF
conversion cache, and the Ollama and Hugging Face stores, which both name blobs by it).
Hashing a multi-GB file takes seconds, so results are cached on disk keyed by
(path, inode, size, mtime): any change to the file gives a new key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path

from adam_integrations.core.paths import cache_root

_BLOCK = 4 * 1024 * 1024
_lock = threading.Lock()


def file_sha256(path: str | os.PathLike[str], *, cache_dir: Path | None = None) -> str:
    """The hex sha256 of a file's content, from the cache when the file is unchanged."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = f"{resolved}|{stat.st_ino}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = (cache_dir or cache_root()) / "sha256-cache.json"
    with _lock:
        known = _read(cache_file)
        if key in known:
            return known[key]
    digest = hashlib.sha256()
    with resolved.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    value = digest.hexdigest()
    with _lock:
        known = _read(cache_file)
        known[key] = value
        _write_atomic(cache_file, known)
    return value


def _read(cache_file: Path) -> dict[str, str]:
    try:
        data = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_atomic(cache_file: Path, data: dict[str, str]) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_file.parent, prefix=".sha256-cache-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(tmp, cache_file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
