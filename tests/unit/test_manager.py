"""ModelManager's plumbing over the scripted backend: one stream per call, domains,
keep-alive tracking, a chat model created only when used, one error for one mistake."""

from __future__ import annotations

import pytest

from adam_integrations import GenerationConfig, InvalidRequestError, ModelManager, registry
from adam_integrations.core.errors import UnknownOptionError
from adam_integrations.core.loaded import loaded_models
from tests.helpers import wait_until
from tests.unit.scripted import NAME


def test_generate_response_is_the_stream_collected(manager):
    assert manager.generate_response("hello there") == "echo: hello there"
    assert "".join(manager.generate_stream("hello there")) == "echo: hello there"


def test_chat_reports_usage_and_a_length_finish(manager):
    completion = manager.chat([{"role": "user", "content": "say: one two three"}],
                              max_tokens=2)
    assert completion.text == "one two"
    assert completion.finish_reason == "length"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 2)


async def test_async_twins_give_the_same_answers(manager):
    assert await manager.agenerate_response("hi") == "echo: hi"
    assert [p async for p in manager.agenerate_stream("say: a b")] == ["a", " b"]


def test_a_domain_adds_its_system_prompt_only_when_the_call_has_none():
    manager = ModelManager(model=NAME, model_type=NAME, domain="code")
    manager.generate_response("hi")
    manager.generate_response("hi", system_prompt="Be brief.")
    first, second = manager.backend.requests[-2:]
    assert first.messages[0].role == "system" and "code" in first.messages[0].content.lower()
    assert second.messages[0].content == "Be brief."


def test_a_domain_sampling_applies_only_when_the_call_sets_none():
    manager = ModelManager(model=NAME, model_type=NAME, domain="code")
    manager.chat([{"role": "user", "content": "hi"}])
    manager.chat([{"role": "user", "content": "hi"}], temperature=0.9)
    first, second = manager.backend.requests[-2:]
    assert (first.config.temperature, second.config.temperature) == (0.2, 0.9)


def test_a_model_is_busy_while_a_stream_runs_and_unloads_after_keep_alive(backend):
    manager = ModelManager(model=NAME, model_type=NAME, keep_alive=0)
    stream = manager.generate_stream("say: a b c")
    next(stream)
    assert backend.is_loaded and loaded_models.expires_in(backend) == 0
    assert not wait_until(lambda: not backend.is_loaded, timeout=0.3)  # busy: kept
    list(stream)
    assert wait_until(lambda: not backend.is_loaded, timeout=5)
    loaded_models.set_keep_alive(backend, None)


def test_an_embedding_only_manager_never_resolves_a_chat_model(monkeypatch):
    def no_default(*args, **kwargs):
        raise AssertionError("the default chat model was resolved")

    monkeypatch.setattr("adam_integrations.catalog.defaults.default_chat_reference", no_default)
    manager = ModelManager(model_type=NAME, embedding_model=NAME)
    assert len(manager.batch_embed(["a", "b"])) == 2
    assert "backend" not in vars(manager) and "source" not in vars(manager)


def test_a_named_chat_model_is_checked_at_once_but_created_on_first_use():
    manager = ModelManager(model=NAME, model_type=NAME)
    assert manager.source.name == "scripted-model" and "backend" not in vars(manager)
    manager.generate_response("hi")
    assert "backend" in vars(manager)


@pytest.mark.parametrize("call", [
    lambda m: m.generate_response("hi", max_new_tokens=3),
    lambda m: m.chat([{"role": "user", "content": "hi"}], max_new_tokens=3),
    lambda m: GenerationConfig().merged(max_new_tokens=3),
    lambda m: registry.check_options("huggingface", {"max_new_tokens": 3}),
])
def test_an_unknown_option_is_one_error_everywhere(manager, call):
    with pytest.raises(UnknownOptionError, match="max_new_tokens") as raised:
        call(manager)
    assert isinstance(raised.value, InvalidRequestError) and isinstance(raised.value, TypeError)
