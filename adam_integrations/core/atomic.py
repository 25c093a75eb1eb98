"""Files written whole or not at all: the one way this package writes a file others read.

``write_atomically`` writes bytes or text to a temporary file beside the target and
renames it into place (readers see the old file or the new one, never half of one);
``replacing`` gives a temporary path for a writer that makes the file itself (llama.cpp's
quantizer, gguf's writer) and moves it into place when the block ends without an error.
Either way a failure removes the temporary file and leaves the target as it was.
(``core.stores.cache_entry`` does the same for whole folders.)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def write_atomically(path: str | os.PathLike[str], data: bytes | str, *,
                     mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it (``mode``: its
    permission bits, e.g. 0o644 for files other users' processes read)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` to write the file to; moved onto ``path`` when the
    block ends without an error, removed otherwise."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
