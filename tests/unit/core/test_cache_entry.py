"""Cache folders are written whole or not at all, and a bad one is replaced."""

from __future__ import annotations

import json

import pytest

from adam_integrations.core.stores.cache_entry import is_complete, writing_entry


def test_an_entry_appears_whole_with_its_marker_last(tmp_path):
    entry = tmp_path / "cache" / "abc-transformers-5"
    with writing_entry(entry, "marker.json", {"source": "x"}) as staging:
        (staging / "weights").write_text("w")
        assert not entry.exists()  # nothing visible until the block ends
    assert is_complete(entry, "marker.json") and (entry / "weights").read_text() == "w"
    assert json.loads((entry / "marker.json").read_text())["source"] == "x"
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # no staging left


def test_a_failed_write_leaves_nothing(tmp_path):
    entry = tmp_path / "abc"
    with pytest.raises(RuntimeError), writing_entry(entry, "marker.json", {}) as staging:
        (staging / "half").write_text("h")
        raise RuntimeError("export failed")
    assert not entry.exists() and list(tmp_path.iterdir()) == []


def test_replace_swaps_a_bad_entry_for_a_new_one(tmp_path):
    entry = tmp_path / "abc"
    with writing_entry(entry, "marker.json", {}) as staging:
        (staging / "old").write_text("broken")
    with writing_entry(entry, "marker.json", {}, replace=True) as staging:
        (staging / "new").write_text("good")
    assert sorted(p.name for p in entry.iterdir()) == ["marker.json", "new"]
    assert [p.name for p in tmp_path.iterdir()] == ["abc"]


def test_without_replace_an_existing_entry_is_kept(tmp_path):
    entry = tmp_path / "abc"
    with writing_entry(entry, "marker.json", {}) as staging:
        (staging / "first").write_text("1")
    with writing_entry(entry, "marker.json", {}) as staging:  # as a second process would
        (staging / "second").write_text("2")
    assert (entry / "first").exists() and not (entry / "second").exists()
