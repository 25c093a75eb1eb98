"""Files written whole or not at all: the one way this package writes a file others read.

``write_atomically`` writes bytes or text to a temporary file beside the target and
renames it into place (readers see the old file or the new one, never half of one);
``replacing`` gives a temporary path for a writer that makes the file itself (llama.cpp's
quantizer, gguf's writer) and moves it into place when the block ends without an error.
Either way a failure removes the temporary file and leaves the target as it was.
(``core.stores.cache_entry`` does the same for whole folders.)

Temporary files are made with ``mkstemp`` (``O_CREAT | O_EXCL``, mode 0600, a random
name): nothing planted beside the target, a symlink included, is ever followed or
written through. They are named ``.<target>.partial-<pid>-<random>``, so a writer killed
with ``kill -9`` leaves a file the next writer in that folder recognises:
``sweep_stale_partials`` removes those whose process is gone and whose owner is the user
running it, and nothing else.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with replacing(folder / "model.gguf") as partial:
    ...     _ = partial.write_bytes(b"GGUF")
    >>> sorted(p.name for p in folder.iterdir())
    ['model.gguf']
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from adam_integrations.core.errors import InvalidRequestError

_PARTIAL = re.compile(r"\..+\.partial-(\d+)-[A-Za-z0-9_]+")


def partial_file(target: str | os.PathLike[str]) -> Path:
    """A new, empty temporary file beside ``target`` (mode 0600, a name nobody could
    predict or plant); InvalidRequestError naming the folder when it cannot be made."""
    target = Path(target)
    try:
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.partial-{os.getpid()}-")
    except OSError as error:
        raise InvalidRequestError(
            f"cannot write in {target.parent}: {error.strerror or error}; choose a folder "
            "you can write to (with room for the file)") from error
    os.close(handle)
    return Path(temporary)


def write_atomically(path: str | os.PathLike[str], data: bytes | str, *,
                     mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it (``mode``: its
    permission bits, e.g. 0o644 for files other users' processes read; a file being
    replaced keeps its own bits whatever ``mode`` says)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    kept = _mode_of(target)
    temporary = partial_file(target)
    try:
        temporary.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        if kept is not None or mode is not None:
            os.chmod(temporary, kept if kept is not None else mode)  # type: ignore[arg-type]
        os.replace(temporary, target)
    except BaseException:
        _remove(temporary)
        raise


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer to fill; when the block ends without
    an error it becomes ``path`` (with the permissions a new file of the user's gets),
    else it is removed. Without ``overwrite`` a file that appeared at ``path`` meanwhile
    is never replaced (InvalidRequestError). Stale temporary files of this naming in the
    folder, left by a writer that was killed, are removed first."""
    target = Path(path)
    sweep_stale_partials(target.parent)
    partial = partial_file(target)
    try:
        yield partial
        os.chmod(partial, 0o666 & ~_umask())
        _move_into_place(partial, target, overwrite)
    finally:
        _remove(partial)


def _move_into_place(partial: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(partial, target)
        return
    try:
        os.link(partial, target)  # fails when anything, a link included, is at target
    except FileExistsError:
        raise InvalidRequestError(f"{target} appeared while it was being written; it was "
                                  "left as it is, choose another output file") from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if os.path.lexists(target):  # a file system without hardlinks
            raise InvalidRequestError(f"{target} appeared while it was being written; it "
                                      "was left as it is") from None
        os.replace(partial, target)


def sweep_stale_partials(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of this naming in ``folder`` whose writer is gone (its
    process no longer runs) and that belong to the user running this: what a writer
    killed mid-way left. Links, folders, other users' files and live writers' files are
    left alone. The paths removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL.fullmatch(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if (stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()
                and not _process_alive(int(match.group(1)))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or a number that is no pid: leave it
    return True


def _mode_of(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would, for every thread)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # a folder made read-only meanwhile: nothing to do
        path.unlink(missing_ok=True)
