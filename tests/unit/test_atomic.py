"""Files written whole or not at all (core/atomic.py): what readers see, and what a
failure leaves behind (nothing)."""

from __future__ import annotations

import stat

import pytest

from adam_integrations.core.atomic import replacing, write_atomically


def test_a_file_is_replaced_whole_with_the_mode_asked_for(tmp_path):
    target = tmp_path / "sub" / "data.json"
    write_atomically(target, "first")
    write_atomically(target, b"second", mode=0o644)
    assert target.read_text() == "second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
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
