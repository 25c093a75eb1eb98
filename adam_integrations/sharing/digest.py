"""sha256 of model files, computed once per file version and remembered.

A weight file is identified by its content hash everywhere in this package (the GGUF
conversion cache, and the Ollama and Hugging Face stores, which both name blobs by it).
Hashing a multi-GB file takes seconds, so results are cached on disk keyed by
(path, inode, size, mtime): any change to the file gives a new key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path

from adam_integrations.core.atomic import write_atomically
from adam_integrations.core.errors import ModelLoadError
from adam_integrations.core.paths import cache_root

_BLOCK = 4 * 1024 * 1024
_lock = threading.Lock()


def file_sha256(path: str | os.PathLike[str], *, cache_dir: Path | None = None,
                fresh: bool = False) -> str:
    """The hex sha256 of a file's content, from the cache when the file is unchanged
    (``fresh``: read the file again whatever the cache says, and remember the result)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = f"{resolved}|{stat.st_ino}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = (cache_dir or cache_root()) / "sha256-cache.json"
    with _lock:
        known = _read(cache_file)
        if key in known and not fresh:
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


def folder_sha256(path: str | os.PathLike[str]) -> str:
    """A stable hex sha256 of a model folder (a transformers checkpoint): of its files'
    relative paths and content digests (``file_sha256``, so cached), in sorted order.
    Two folders with the same files have the same digest, wherever they are."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(root).as_posix()}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


_NAMED_DIGEST = re.compile(r"(?:sha256-)?([0-9a-f]{64})")


def named_digest(path: str | os.PathLike[str]) -> str | None:
    """The sha256 a content-addressed file is named after, or None: Ollama's blobs
    (``blobs/sha256-<hex>``) and the Hugging Face cache's (``blobs/<hex>``). The name is
    read where the path says before any link is followed (an Ollama blob that links to a
    file elsewhere, as a share across file systems makes, keeps its digest), then at the
    end of the links (a Hugging Face snapshot file links to its blob).

    Example:
        >>> named_digest("/x/models/blobs/sha256-" + "ab" * 32) == "ab" * 32
        True
        >>> named_digest("/x/model.gguf") is None
        True
    """
    for candidate in (Path(os.path.abspath(path)), Path(path).resolve()):
        match = _NAMED_DIGEST.fullmatch(candidate.name)
        if match and candidate.parent.name == "blobs":
            return match.group(1)
    return None


def check_named_digest(path: str | os.PathLike[str], *, fresh: bool = False) -> None:
    """ModelLoadError when a content-addressed file (``named_digest``) does not hold the
    content its name says: a corrupt download, a file changed in place, or the file a
    blob links to changed."""
    expected = named_digest(path)
    if expected is None:
        return
    actual = file_sha256(path, fresh=fresh)
    if actual != expected:
        raise ModelLoadError(digest_mismatch(path, expected, actual))


def digest_mismatch(path: str | os.PathLike[str], expected: str, actual: str) -> str:
    """What to say of a file whose content does not match the digest it is named after."""
    return (f"{Path(path).name} is corrupt: its content has sha256 {actual[:12]}..., not "
            f"the {expected[:12]}... it is named after; pull the model again (or remove it)")


def _read(cache_file: Path) -> dict[str, str]:
    try:
        data = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_atomic(cache_file: Path, data: dict[str, str]) -> None:
    write_atomically(cache_file, json.dumps(data))
