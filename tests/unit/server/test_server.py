"""``adam serve``'s two wire formats over the scripted backend, in process (the ASGI app
behind httpx's ASGI transport): the shapes clients read, errors with their status, and
no blocking work on the event loop."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import ollama
import openai
import pytest

from adam_integrations import resolve
from adam_integrations.server import create_app
from adam_integrations.server.models import ServedModels
from tests.helpers import error_message
from tests.unit.scripted import NAME


@pytest.fixture
def app(tmp_path, backend):
    return create_app(ServedModels(tmp_path / "aliases.json", model_type=NAME))


@pytest.fixture
async def http(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1:11434") as client:
        yield client


def _lines(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines()]


async def test_chat_streams_ndjson_with_counts_on_the_last_line_only(http):
    response = await http.post("/api/chat", json={
        "model": NAME, "messages": [{"role": "user", "content": "say: a b"}]})
    lines = _lines(response)
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert all(isinstance(x["message"]["content"], str) for x in lines)
    assert [x["done"] for x in lines] == [False, False, True]
    assert "eval_count" in lines[-1] and "eval_count" not in lines[0]
    assert lines[-1]["eval_count"] == 2 and isinstance(lines[-1]["total_duration"], int)


async def test_the_official_client_reads_chat_thinking_and_tool_calls(app):
    client = ollama.AsyncClient(host="http://127.0.0.1:11434",
                                transport=httpx.ASGITransport(app=app))
    answer = await client.chat(model=NAME, messages=[{"role": "user", "content": "say: 1"}],
                               think=True)
    assert (answer.message.content, answer.message.thinking) == ("1", "I think.")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    answer = await client.chat(model=NAME, tools=tools, messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
        {"role": "user", "content": "say: thanks"}])
    assert answer.message.content == "thanks" and answer.done_reason == "stop"


async def test_a_non_streamed_chat_is_the_lines_merged(http):
    response = await http.post("/api/chat", json={
        "model": NAME, "stream": False, "messages": [{"role": "user", "content": "say: x y"}]})
    body = response.json()
    assert body["message"]["content"] == "x y" and body["done"] is True


@pytest.mark.parametrize("route", ["/api/chat", "/v1/chat/completions"])
async def test_tool_call_arguments_that_are_not_json_get_a_400(http, route):
    response = await http.post(route, json={"model": NAME, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{city: Oslo"}}]},
        {"role": "user", "content": "again"}]})
    assert response.status_code == 400
    assert "not JSON" in error_message(response)


async def test_an_unknown_model_is_a_404_on_both_apis(http):
    assert (await http.post("/api/chat", json={"model": "nope", "messages": [
        {"role": "user", "content": "hi"}]})).status_code == 404
    assert (await http.post("/v1/chat/completions", json={"model": "nope", "messages": [
        {"role": "user", "content": "hi"}]})).status_code == 404


async def test_the_openai_client_streams_content_reasoning_and_usage(app):
    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:11434/v1", api_key="unused",
                                http_client=httpx.AsyncClient(
                                    transport=httpx.ASGITransport(app=app)))
    stream = await client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": "say: a b"}], stream=True,
        stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "a b" and chunks[-1].usage.completion_tokens == 2
    whole = await client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": "say: ok"}], reasoning_effort="low")
    assert whole.choices[0].message.content == "ok"
    extra = whole.choices[0].message.model_extra  # both names clients read (issue 39)
    assert extra["reasoning_content"] == extra["reasoning"] == "I think."
    stream = await client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": "say: ok"}], stream=True,
        reasoning_effort="low")
    deltas = [c.choices[0].delta.model_extra for c in [c async for c in stream] if c.choices]
    assert "".join(d.get("reasoning") or "" for d in deltas) == "I think."
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == "I think."


async def test_embed_returns_normalised_vectors_and_token_counts(http):
    body = (await http.post("/api/embed", json={"model": NAME, "input": ["a b", "c"]})).json()
    assert len(body["embeddings"]) == 2 and body["prompt_eval_count"] == 3
    assert abs(sum(x * x for x in body["embeddings"][0]) - 1) < 1e-6


async def test_listing_models_hashes_files_off_the_event_loop(http, monkeypatch, tmp_path):
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + bytes(64))

    def slow_hash(path, **kwargs):  # as hashing a multi-GB file is
        time.sleep(1.0)
        return "0" * 64

    monkeypatch.setattr("adam_integrations.server.serving.file_sha256", slow_hash)
    monkeypatch.setattr(ServedModels, "listed", lambda self: [
        ("big:latest", resolve(str(weights)))])
    tags = asyncio.create_task(http.get("/api/tags"))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    assert (await http.get("/api/version")).status_code == 200
    assert time.perf_counter() - started < 0.5 and not tags.done()
    assert (await tags).json()["models"][0]["digest"] == "0" * 64


async def test_show_reads_the_template_the_backend_declares(http):
    body = (await http.post("/api/show", json={"model": NAME})).json()
    assert body["template"] == "{{ messages }}"
    assert body["model_info"]["scripted.context_length"] == 4096


@pytest.mark.parametrize("route", ["/api/chat", "/v1/chat/completions"])
async def test_unset_options_take_ollamas_defaults_and_set_ones_are_kept(http, backend, route):
    """As Ollama runs a request: what it leaves unset comes from the model's parameters,
    else Ollama's defaults, so by default it samples (temperature 0.8)."""
    hello = [{"role": "user", "content": "say: hi"}]
    await http.post(route, json={"model": NAME, "messages": hello, "stream": False})
    config = backend.requests[-1].config
    assert (config.temperature, config.top_k, config.top_p, config.repetition_penalty) == (
        0.8, 40, 0.9, 1.1)
    await http.post(route, json={"model": NAME, "messages": hello, "stream": False,
                                 **({"options": {"temperature": 0, "top_k": 3}}
                                    if route == "/api/chat" else {"temperature": 0})})
    config = backend.requests[-1].config
    assert config.temperature == 0 and config.top_k == (3 if route == "/api/chat" else 40)


async def test_each_dialect_answers_errors_in_its_shape_wherever_they_arise(http):
    """One list of dialects (``server.dialects``): a route's error, a missing route and a
    refused method each come in the shape of the path's dialect."""
    from adam_integrations.server.dialects import DIALECTS, dialect_of

    assert [d.name for d in DIALECTS] == ["anthropic", "openai", "ollama"]
    for path, method, name in [("/v1/messages", "POST", "anthropic"),
                               ("/v1/messages/nowhere", "GET", "anthropic"),
                               ("/v1/chat/completions", "POST", "openai"),
                               ("/v1/nowhere", "GET", "openai"), ("/tokenize", "GET", "openai"),
                               ("/api/chat", "POST", "ollama"), ("/nowhere", "GET", "ollama")]:
        assert dialect_of(path).name == name
        response = await http.request(method, path, json={"model": "no-such-model"})
        assert response.status_code >= 400
        body = response.json()
        expected = dialect_of(path).error_object(response.status_code, "x", None, None)
        assert set(body) == set(expected), (path, body)
        if isinstance(expected["error"], dict):
            assert set(body["error"]) == set(expected["error"]), (path, body)
