"""OllamaModel (the official ``ollama`` client) against ``adam serve`` started by the
tests as a real subprocess: chat, streaming, async, tools, format, options, embeddings,
info, and the errors that say how to fix a missing server or model."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest

from adam_integrations import (
    InvalidRequestError,
    ModelLoadError,
    ModelManager,
    ModelNotFoundError,
    resolve,
)
from adam_integrations.backends.remote.ollama import OllamaModel

HI = [{"role": "user", "content": "Say hi."}]
GREEDY = {"temperature": 0.0, "max_tokens": 12}


@pytest.fixture(scope="module")
def model(server) -> OllamaModel:
    return OllamaModel("ollama:smollm2:135m", host=server)


def test_a_name_not_in_a_local_store_runs_on_the_ollama_backend_automatically(server):
    manager = ModelManager(model="ollama:smollm2:135m", host=server)
    assert manager.backend.name == "ollama" and "Ollama server" in manager.explanation
    assert resolve("ollama:smollm2:135m").ollama_name == "smollm2:135m"


def test_chat_streams_pieces_then_usage(model):
    chunks = list(model.stream_chat(HI, **GREEDY))
    assert sum(1 for c in chunks if c.text) >= 2
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length") and last.usage.prompt_tokens > 0
    assert 0 < last.usage.completion_tokens <= 12 and last.usage.total_seconds > 0


def test_non_streaming_is_the_stream_collected(model):
    streamed = "".join(c.text for c in model.stream_chat(HI, **GREEDY))
    assert model.chat(HI, **GREEDY).text == streamed


async def test_async_chat_uses_the_async_client_and_cancels(model):
    answer = await model.achat(HI, **GREEDY)
    assert answer.text.strip() and answer.usage.completion_tokens > 0

    started = asyncio.Event()

    async def consume() -> None:
        async for _ in model.astream_chat([{"role": "user", "content": "A long story."}],
                                          temperature=0.0, max_tokens=3000):
            started.set()

    task = asyncio.create_task(consume())
    # cancelled once the answer is under way (not after a fixed time: on a fast machine
    # the whole answer could be done by then)
    await asyncio.wait_for(started.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    done = await asyncio.wait_for(model.achat(HI, temperature=0.0, max_tokens=2), 15)
    assert done.usage.completion_tokens <= 2  # the server stopped the abandoned answer


def test_stop_strings_and_seed_reach_the_server(model):
    reference = model.chat(HI, **GREEDY).text
    stop = reference.split()[1] if len(reference.split()) > 1 else reference[:2]
    cut = model.chat(HI, stop=[stop], **GREEDY)
    assert stop not in cut.text
    sampled = {"temperature": 1.0, "seed": 7, "max_tokens": 8}
    assert model.chat(HI, **sampled).text == model.chat(HI, **sampled).text


def test_a_json_schema_format_comes_back_valid(model):
    schema = {"type": "object", "properties": {"color": {"enum": ["red", "blue"]}},
              "required": ["color"]}
    completion = model.chat([{"role": "user", "content": "Pick a color."}],
                            response_format=schema, temperature=0.0)
    jsonschema.validate(json.loads(completion.text), schema)
    assert completion.parsed == json.loads(completion.text)


def test_a_forced_tool_call_comes_back_as_a_call(model):
    tool = {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    completion = model.chat([{"role": "user", "content": "Weather in Paris?"}],
                            tools=[tool], tool_choice="required", temperature=0.0)
    (call,) = completion.tool_calls
    assert call.name == "get_weather" and isinstance(call.arguments["city"], str)
    assert completion.finish_reason == "stop" and completion.text == ""  # a core reason


def test_thinking_on_a_model_that_cannot_think_is_refused(model):
    with pytest.raises(InvalidRequestError, match="does not support thinking"):
        model.chat(HI, think=True, max_tokens=4)


def test_embeddings_come_in_batches(server):
    embedder = OllamaModel("ollama:all-minilm:l6-v2", host=server)
    texts = [f"text number {i}" for i in range(70)]  # two batches of at most 64
    vectors = embedder.embed(texts)
    assert len(vectors) == 70 and len(vectors[0]) == 384
    assert vectors[3] == pytest.approx(embedder.embed([texts[3]])[0], abs=1e-5)


def test_info_comes_from_show(model):
    info = model.info()
    assert (info.backend, info.family, info.context_window) == ("ollama", "llama", 8192)
    assert "completion" in info.capabilities


def test_a_missing_model_says_how_to_pull_it(server):
    with pytest.raises(ModelNotFoundError, match="ollama pull no-such-model"):
        OllamaModel("ollama:no-such-model", host=server).load()


def test_no_server_says_how_to_start_one():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    with pytest.raises(ModelLoadError, match="ollama serve"):
        OllamaModel("ollama:qwen3", host=f"http://127.0.0.1:{port}", timeout=5).load()


def test_a_file_is_not_an_ollama_model(chat_gguf_path):
    with pytest.raises(ModelNotFoundError, match="not an Ollama model"):
        OllamaModel(str(chat_gguf_path))
