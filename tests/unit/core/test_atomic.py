"""Files written whole or not at all (core/atomic.py): what readers see, and what a
failure leaves behind (nothing); temporary files nobody can predict, plant a link at, or
leave behind for good."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from adam_integrations.core.atomic import (
    partial_file,
    replacing,
    sweep_stale_partials,
    write_atomically,
)
from adam_integrations.core.errors import InvalidRequestError


def test_a_new_file_gets_the_mode_asked_for_and_a_rewritten_one_keeps_its_own(tmp_path):
    target = tmp_path / "sub" / "data.json"
    write_atomically(target, "first", mode=0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    target.chmod(0o600)  # the user made it private
    write_atomically(target, b"second", mode=0o644)
    assert target.read_text() == "second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "data.json"
    target.write_text("old")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("adam_integrations.core.atomic.os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_a_writer_that_fails_leaves_nothing_and_one_that_succeeds_leaves_the_file(tmp_path):
    target = tmp_path / "model.gguf"
    with pytest.raises(RuntimeError), replacing(target) as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with replacing(target) as partial:
        assert partial.parent == tmp_path and partial != target
        partial.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 & ~_umask()  # a user's new file


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_link_planted_at_the_old_predictable_name_is_never_written_through(tmp_path):
    """The temporary name was ``.<name>.partial-<pid>``: a symlink planted there made the
    tools overwrite the file it pointed at. Now the name is random and made exclusively."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"the user's secret")
    victim.chmod(0o600)
    target = tmp_path / "out.gguf"
    planted = tmp_path / f".out.gguf.partial-{os.getpid()}"
    planted.symlink_to(victim)
    with replacing(target) as partial:
        assert not partial.is_symlink() and partial.stat().st_size == 0
        assert stat.S_IMODE(partial.stat().st_mode) == 0o600  # private while it is written
        partial.write_bytes(b"model")
    assert victim.read_bytes() == b"the user's secret"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert target.read_bytes() == b"model" and planted.is_symlink()


def test_a_file_that_appears_meanwhile_is_never_replaced(tmp_path):
    target = tmp_path / "out.gguf"
    with pytest.raises(InvalidRequestError, match="appeared while"), \
            replacing(target) as partial:
        partial.write_bytes(b"ours")
        target.write_bytes(b"someone else's")
    assert target.read_bytes() == b"someone else's" and list(tmp_path.iterdir()) == [target]


def test_a_folder_that_cannot_be_written_is_named_in_the_error(tmp_path):
    with pytest.raises(InvalidRequestError, match=r"cannot write in .*missing"):
        partial_file(tmp_path / "missing" / "out.gguf")


def test_a_failed_cleanup_never_hides_the_error_that_caused_it(tmp_path, monkeypatch):
    """The folder went read-only while the writer ran: the temporary cannot be removed,
    and the writer's own error is the one raised (no traceback from the cleanup)."""
    def refused(self, missing_ok=False):
        raise PermissionError(13, "Read-only file system")

    with pytest.raises(RuntimeError, match="writer failed"), \
            replacing(tmp_path / "out.gguf"):
        monkeypatch.setattr("pathlib.Path.unlink", refused)
        raise RuntimeError("writer failed")


def test_stale_partials_of_dead_writers_are_swept_and_nothing_else(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".model.gguf.partial-{dead}-abc123"
    stale.write_bytes(b"half a model")
    live = tmp_path / f".model.gguf.partial-{os.getpid()}-def456"  # a writer still running
    live.write_bytes(b"being written")
    linked = tmp_path / f".other.gguf.partial-{dead}-xyz789"
    linked.symlink_to(tmp_path / "model.gguf")  # a link: never ours to remove
    unrelated = tmp_path / "notes.partial-1-abc"
    unrelated.write_text("the user's")
    assert sweep_stale_partials(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, linked.name, unrelated.name])
