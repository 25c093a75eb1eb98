"""Downloads from the hub when the hub cannot be reached: one clear line at once, not
tens of seconds of retries and a pasted traceback."""

from __future__ import annotations

import time

import pytest

from adam_integrations.core.errors import ModelNotFoundError
from adam_integrations.core.stores import hub


@pytest.fixture
def unreachable_hub(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "https://hub.adam-test.invalid")
    monkeypatch.setattr(hub, "_reachability", {})
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.mark.parametrize("fetch", [
    lambda: hub.hub_snapshot("acme/model", revision=None, cache_dir=None, allow_download=True),
    lambda: hub.hub_gguf("acme/model-GGUF", "Q4_K_M", revision=None, cache_dir=None,
                         allow_download=True),
], ids=["snapshot", "gguf"])
def test_a_hub_whose_name_does_not_resolve_fails_at_once_in_one_line(unreachable_hub, fetch):
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError) as raised:
        fetch()
    message = str(raised.value)
    assert "looks offline" in message and "HF_HUB_OFFLINE=1" in message
    assert "\n" not in message and "hub.adam-test.invalid" in message
    assert time.monotonic() - started < 5
