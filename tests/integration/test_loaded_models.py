"""One loaded copy per model per process; keep_alive unloads idle models."""

from __future__ import annotations

import time

import pytest

from adam_integrations import InvalidRequestError, ModelManager
from adam_integrations.core.loaded import loaded_models, parse_keep_alive
from tests.helpers import wait_until


def test_managers_naming_the_same_model_share_one_backend(manager):
    assert ModelManager().backend is manager.backend
    assert ModelManager(model="smollm2").backend is manager.backend
    assert ModelManager().embedder is manager.embedder


def test_different_backend_options_get_their_own_copy(manager):
    assert ModelManager(dtype="float32").backend is not manager.backend


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(300, 300.0), ("5m", 300.0), ("1h30m", 5400.0), ("500ms", 0.5), ("0", 0.0), (0, 0.0),
     (-1, None), ("-1m", None), (None, None), ("45", 45.0)],
)
def test_keep_alive_reads_like_ollamas(value, seconds):
    assert parse_keep_alive(value) == seconds


def test_a_keep_alive_that_is_not_a_duration_says_how_to_write_one():
    with pytest.raises(InvalidRequestError, match="'5m'"):
        parse_keep_alive("soon")


def test_keep_alive_zero_unloads_right_after_the_request():
    manager = ModelManager(keep_alive=0, device="cpu")  # own copy: the option differs
    manager.generate_response("hi", max_tokens=2)
    assert wait_until(lambda: not manager.backend.is_loaded)
    assert manager.generate_response("hi", max_tokens=2)  # loads again on demand
    manager.unload()


def test_an_idle_model_is_unloaded_after_its_keep_alive_but_not_while_in_use():
    manager = ModelManager(keep_alive="1s", device="cpu")
    manager.backend.load()
    stream = manager.stream_chat([{"role": "user", "content": "Tell a story."}],
                                 max_tokens=40, temperature=0.0)
    next(stream)
    time.sleep(1.5)
    assert manager.backend.is_loaded  # a request is running
    list(stream)
    assert wait_until(lambda: not manager.backend.is_loaded, timeout=10)
    assert manager.backend not in loaded_models.loaded()
