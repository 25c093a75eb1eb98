"""Every answer ``adam serve`` writes is what the official SDKs' own types describe:
validated strictly (no coercion, every required field present) by the pydantic models of
``openai``, ``anthropic`` and ``ollama``, streamed and whole. The clients build their
objects without validating, so a missing field would otherwise pass unseen until a
program read it."""

from __future__ import annotations

import json

import anthropic.types as anthropic_types
import httpx
import ollama
import openai.types as openai_types
import openai.types.chat as chat_types
import openai.types.responses as responses_types
import pytest
from pydantic import TypeAdapter

from adam_integrations.server import create_app
from adam_integrations.server.models import ServedModels
from tests.unit.scripted import NAME

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture
async def http(tmp_path, backend):
    app = create_app(ServedModels(tmp_path / "aliases.json", model_type=NAME))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1:11434") as client:
        yield client


def _events(response: httpx.Response) -> list[str]:
    """The JSON of each server-sent event (``[DONE]`` left out)."""
    return [line[len("data: "):] for line in response.text.splitlines()
            if line.startswith("data: {")]


def _valid(kind: type, text: str):
    """``text`` read as the SDK reads wire data, strictly: JSON mode, no coercion."""
    return kind.model_validate_json(text, strict=True)


async def test_openai_chat_completions_whole_and_streamed(http):
    body = {"model": NAME, "messages": [{"role": "user", "content": "say: hi there"}],
            "logprobs": True, "top_logprobs": 2}
    answer = await http.post("/v1/chat/completions", json=body)
    _valid(chat_types.ChatCompletion, answer.text)
    called = await http.post("/v1/chat/completions", json={
        **body, "tools": TOOLS, "tool_choice": "required"})
    assert _valid(chat_types.ChatCompletion, called.text).choices[0].message.tool_calls
    streamed = await http.post("/v1/chat/completions", json={
        **body, "stream": True, "stream_options": {"include_usage": True}})
    chunks = [_valid(chat_types.ChatCompletionChunk, event) for event in _events(streamed)]
    assert chunks[-1].usage is not None


async def test_openai_completions_embeddings_and_models(http):
    completion = await http.post("/v1/completions", json={
        "model": NAME, "prompt": "say: a b", "logprobs": 1})
    _valid(openai_types.Completion, completion.text)
    streamed = await http.post("/v1/completions", json={
        "model": NAME, "prompt": "say: a b", "stream": True})
    events = _events(streamed)
    # the SDK reads every event as a Completion, whose finish_reason is not nullable:
    # the last event (which has one) is held to it whole, the others without it
    _valid(openai_types.Completion, events[-1])
    for event in events[:-1]:
        data = json.loads(event)
        for choice in data["choices"]:
            assert choice.pop("finish_reason") is None
            choice["finish_reason"] = "stop"
        _valid(openai_types.Completion, json.dumps(data))
    vectors = await http.post("/v1/embeddings", json={"model": NAME, "input": ["a", "b"]})
    _valid(openai_types.CreateEmbeddingResponse, vectors.text)
    listed = (await http.get("/v1/models")).json()["data"]
    for model in listed:
        _valid(openai_types.Model, json.dumps(model))
    _valid(openai_types.Model, (await http.get(f"/v1/models/{listed[0]['id']}")).text)


async def test_openai_responses_whole_and_every_streamed_event(http):
    answer = await http.post("/v1/responses", json={"model": NAME,
                                                    "input": "think: say: yo"})
    _valid(responses_types.Response, answer.text)
    nulls = await http.post("/v1/responses", json={  # unset fields sent as null
        "model": NAME, "input": "say: yo", "tool_choice": None, "parallel_tool_calls": None,
        "text": None, "reasoning": None, "metadata": None, "temperature": None})
    _valid(responses_types.Response, nulls.text)
    every_event = TypeAdapter(responses_types.ResponseStreamEvent)
    tools = [{"type": "function", "name": "get_weather", "parameters": TOOLS[0][
        "function"]["parameters"]}]
    for body in ({"input": "think: say: yo"}, {"input": "say: {}", "tools": tools,
                                               "tool_choice": "required"}):
        streamed = await http.post("/v1/responses", json={"model": NAME, "stream": True,
                                                          **body})
        for event in _events(streamed):
            every_event.validate_json(event, strict=True)


async def test_anthropic_messages_whole_and_every_streamed_event(http):
    body = {"model": NAME, "max_tokens": 20,
            "messages": [{"role": "user", "content": "think: say: yo"}]}
    answer = await http.post("/v1/messages", json=body)
    _valid(anthropic_types.Message, answer.text)
    streamed = await http.post("/v1/messages", json={**body, "stream": True})
    every_event = TypeAdapter(anthropic_types.RawMessageStreamEvent)
    for event in _events(streamed):
        every_event.validate_json(event, strict=True)


async def test_ollama_answers_whole_and_streamed(http):
    chat = await http.post("/api/chat", json={
        "model": NAME, "stream": False, "messages": [{"role": "user", "content": "say: yo"}],
        "tools": TOOLS})
    _valid(ollama.ChatResponse, chat.text)
    streamed = await http.post("/api/chat", json={
        "model": NAME, "think": True, "messages": [{"role": "user", "content": "say: yo"}]})
    for line in streamed.text.splitlines():
        _valid(ollama.ChatResponse, line)
    pulled = await http.post("/api/pull", json={"model": NAME})
    for line in pulled.text.splitlines():
        _valid(ollama.ProgressResponse, line)
    generated = await http.post("/api/generate", json={"model": NAME, "prompt": "say: yo",
                                                       "stream": False})
    _valid(ollama.GenerateResponse, generated.text)
    _valid(ollama.EmbedResponse, (await http.post("/api/embed", json={
        "model": NAME, "input": ["a"]})).text)
    _valid(ollama.ListResponse, (await http.get("/api/tags")).text)
    _valid(ollama.ProcessResponse, (await http.get("/api/ps")).text)
    _valid(ollama.ShowResponse, (await http.post("/api/show", json={"model": NAME})).text)
