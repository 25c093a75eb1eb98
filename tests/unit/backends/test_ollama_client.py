"""The Ollama client backend against ``adam serve`` (scripted models) on loopback: the
same wire module on both sides, errors mapped the same way sync and async, and forced
tool calls the server got wrong returned as data."""

from __future__ import annotations

import pytest

from adam_integrations import AdamError, ModelLoadError
from adam_integrations.backends.remote.ollama import OllamaModel
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


def test_the_request_format_is_read_back_as_it_was_written():
    """wire/ollama.py owns the format both ways: what the Ollama backend sends for a
    config, adam serve's parser reads as the same config."""
    from adam_integrations.core.tools import ResponseFormat
    from adam_integrations.core.types import GenerationConfig
    from adam_integrations.wire import ollama as wire

    config = GenerationConfig(
        temperature=0.3, top_p=0.9, top_k=20, min_p=0.05, seed=7, max_tokens=40,
        stop=["END"], repetition_penalty=1.2, presence_penalty=0.5, frequency_penalty=0.25,
        logprobs=True, top_logprobs=2, tools=[WEATHER], think=False)
    body = wire.chat_request_to_wire("m", [], config, num_ctx=4096, keep_alive="5m")
    assert body["options"]["num_ctx"] == 4096 and body["keep_alive"] == "5m"
    read = wire.ChatRequest.parse(body).to_config()
    for field in ("temperature", "top_p", "top_k", "min_p", "seed", "max_tokens", "stop",
                  "repetition_penalty", "presence_penalty", "frequency_penalty", "logprobs",
                  "top_logprobs", "think", "tool_choice"):
        assert getattr(read, field) == getattr(config, field), field
    assert read.tool_names == config.tool_names
    structured = GenerationConfig(response_format=ResponseFormat({"type": "object"}))
    body = wire.chat_request_to_wire("m", [], structured)
    assert wire.ChatRequest.parse(body).to_config().response_format == \
        structured.response_format
    with pytest.raises(AdamError, match="preserve_thinking"):
        wire.chat_request_to_wire("m", [], GenerationConfig(preserve_thinking=True))
