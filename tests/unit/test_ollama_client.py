"""The Ollama client backend against ``adam serve`` (scripted models) on loopback: the
same wire module on both sides, errors mapped the same way sync and async, and forced
tool calls the server got wrong returned as data."""

from __future__ import annotations

import pytest

from adam_integrations import AdamError, ModelLoadError
from adam_integrations.backends.ollama import OllamaModel
from adam_integrations.server import create_app
from adam_integrations.server.models import ServedModels
from tests.helpers import ThreadedServer
from tests.unit.scripted import NAME

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


@pytest.fixture
def server(tmp_path, backend):
    running = ThreadedServer(create_app(ServedModels(tmp_path / "aliases.json", model_type=NAME)))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def model(server):
    model = OllamaModel(f"ollama:{NAME}", host=server.url)
    yield model
    model.close()


def test_chat_streams_through_the_ollama_protocol(model):
    completion = model.chat([{"role": "user", "content": "say: a b"}])
    assert completion.text == "a b" and completion.finish_reason == "stop"
    assert completion.usage.completion_tokens == 2


def test_a_forced_tool_call_is_read_back_with_a_core_finish_reason(model):
    completion = model.chat(
        [{"role": "user", "content": 'say: {"name": "get_weather", "arguments": '
                                     '{"city": "Oslo"}}'}],
        tools=[WEATHER], tool_choice="required")
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [
        ("get_weather", {"city": "Oslo"})]
    assert completion.finish_reason in ("stop", "length")


def test_a_forced_tool_call_the_server_got_wrong_is_returned_as_an_invalid_call(model):
    completion = model.chat([{"role": "user", "content": "say: not a call"}],
                            tools=[WEATHER], tool_choice="required")
    assert completion.tool_calls == []
    assert completion.invalid_tool_calls[0].arguments == "not a call"


async def test_async_chat_matches_sync(model):
    completion = await model.achat([{"role": "user", "content": "say: x"}])
    assert completion.text == "x"


@pytest.mark.parametrize("use_async", [False, True])
async def test_a_server_that_went_away_is_the_same_error_sync_and_async(server, use_async):
    model = OllamaModel(f"ollama:{NAME}", host=server.url)
    model.load()
    server.stop()
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(ModelLoadError, match="no Ollama server answers") as raised:
        if use_async:
            await model.achat(messages)
        else:
            model.chat(messages)
    assert isinstance(raised.value, AdamError)
