"""The request models (``wire.request`` and each wire module's): the model that reads a
request and the JSON schema ``/openapi.json`` publishes for it agree on every body of a
corpus (a body the description calls valid is read; one it refuses is refused, in the
words the schema gives), and the refusals say what was wrong the way users read it."""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
import pytest

from adam_integrations.core.errors import AdamError, InvalidRequestError
from adam_integrations.wire import anthropic, ollama, openai
from adam_integrations.wire import openai_responses as responses
from adam_integrations.wire.request import WireRequest

HELLO = [{"role": "user", "content": "hi"}]
REQUESTS: dict[type[WireRequest], dict[str, Any]] = {
    ollama.ChatRequest: {"model": "m"}, ollama.GenerateRequest: {"model": "m"},
    ollama.EmbedRequest: {"model": "m"}, ollama.EmbeddingsRequest: {"model": "m"},
    ollama.CreateRequest: {"model": "m", "from": "x"}, ollama.PullRequest: {"model": "m"},
    ollama.ShowRequest: {"model": "m"}, ollama.CopyRequest: {"source": "a", "destination": "b"},
    ollama.DeleteRequest: {"model": "m"},
    openai.ChatCompletionRequest: {"model": "m", "messages": HELLO},
    openai.CompletionRequest: {"model": "m", "prompt": "hi"},
    openai.EmbeddingRequest: {"model": "m", "input": "x"},
    openai.TokenizeRequest: {"prompt": "x"}, openai.DetokenizeRequest: {"tokens": [1]},
    responses.ResponsesRequest: {"model": "m", "input": "hi"},
    anthropic.MessagesRequest: {"model": "m", "max_tokens": 5, "messages": HELLO},
    anthropic.CountTokensRequest: {"model": "m", "messages": HELLO},
}
"""Every request model, with a smallest valid body."""

SCALARS = [None, True, False, 0, 1, -1, 2.5, 10**30, 21, "", "x", "json", "5m", "auto",
           "none", "required", "high", "user", "function", "text", "float"]
MESSAGES = [
    {"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}, {"role": 5},
    {"content": "x"}, {"role": "user", "content": [{"type": "text", "text": "a"}]},
    {"role": "user", "content": [{"type": "image"}]}, {"role": "user", "images": ["x"]},
    {"role": "user", "extra": 1}, {"role": "user", "extra": None},
    {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
    {"role": "assistant", "tool_calls": [{"function": {"name": "", "arguments": 5}}]},
    {"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a",
                                  "content": [{"type": "text", "text": "r"}]}]},
    {"type": "function_call", "name": "f", "arguments": "{}"}, {"type": "reasoning"},
    {"type": "function_call_output", "output": "x"},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
         {"type": "function", "function": {"name": "bad name"}}, {"type": "x"},
         {"type": "function", "name": "f", "parameters": {"type": "object"}},
         {"name": "f", "input_schema": {"type": "object"}}, {"name": "f", "input_schema": 5}]
OBJECTS = [{}, {"type": "object"}, {"type": "json_schema", "json_schema": {"schema": {}}},
           {"type": "json_schema"}, {"type": "json_object"}, {"type": "tool", "name": "f"},
           {"type": "function", "function": {"name": "f"}}, {"type": "function", "name": "f"},
           {"type": "enabled", "budget_tokens": -5}, {"format": {"type": "x"}},
           {"effort": "huge"}, {"include_usage": 1}, {"enable_thinking": "no"},
           {"add_vision_id": True}, {"num_predict": 0}, {"temperature": "hot"},
           {"num_ctx": 2.5}, {"stop": 5}, {"x": 1}, {"model.gguf": "sha256:" + "a" * 64},
           {"m.bin": "sha256:"}]
LISTS = [[], ["a"], [1, 2], [[1, 2]], [[1], [2]], [-1], [1.5], [{}],
         *([m] for m in MESSAGES), *([t] for t in TOOLS), [HELLO[0], {"type": "reasoning"}]]
POOL = SCALARS + OBJECTS + LISTS


def _bodies(request: type[WireRequest], base: dict[str, Any]) -> list[dict[str, Any]]:
    fields = [*request.json_schema()["properties"], "unknown"]
    rng = random.Random(request.__name__)
    bodies = [base, {}, *({**base, field: value} for field in fields for value in POOL)]
    for _ in range(200):
        body = dict(base)
        for field in rng.sample(fields, min(len(fields), 3)):
            body[field] = rng.choice(POOL)
        bodies.append(body)
    return bodies


@pytest.mark.parametrize("request_model", list(REQUESTS), ids=lambda r: r.__name__)
def test_the_model_reads_exactly_what_its_schema_describes(request_model):
    validator = jsonschema.Draft202012Validator(request_model.json_schema())
    for body in _bodies(request_model, REQUESTS[request_model]):
        described = validator.is_valid(body)
        try:
            request_model.parse(body)
            read = True
        except InvalidRequestError as error:
            read = False
            assert str(error) and "Input should" not in str(error), (body, str(error))
        assert read == described, (json.dumps(body)[:300], described)


@pytest.mark.parametrize("request_model", list(REQUESTS), ids=lambda r: r.__name__)
def test_a_read_request_gives_a_config_or_a_clear_error(request_model):
    for body in _bodies(request_model, REQUESTS[request_model]):
        try:
            parsed = request_model.parse(body)
        except InvalidRequestError:
            continue
        for read in ("to_config", "chat_messages", "conversation", "texts"):
            if hasattr(parsed, read):
                try:
                    getattr(parsed, read)()
                except AdamError as error:
                    assert str(error)


@pytest.mark.parametrize(("request_model", "body", "said", "param"), [
    (ollama.ChatRequest, {"model": "m", "stream": "yes"},
     'stream must be true or false (stream the answer (default true)), got "yes"', "stream"),
    (ollama.ChatRequest, {"model": "m", "messages": [{"content": "hi"}]},
     "messages[0].role is required", "messages"),
    (ollama.ChatRequest, {"model": "m", "messages": [{"role": "user", "images": ["x"]}]},
     'messages[0].images must be at most 0 items long (no vision model is served), got '
     '["x"]', "messages"),
    (ollama.ChatRequest, {"model": "m", "options": {"temperature": "hot"}},
     'options.temperature must be a number, got "hot"', "options"),
    (ollama.ChatRequest, {"model": "m", "options": {"num_predict": 0}},
     "options.num_predict must be anything but 0 (tokens to generate at most; -1: until "
     "the model stops), got 0", "options"),
    (openai.ChatCompletionRequest, {"model": "m", "messages": []},
     "messages must be at least 1 items long, got []", "messages"),
    (openai.ChatCompletionRequest, {"model": "m", "messages": HELLO,
                                    "tools": [{"type": "function",
                                               "function": {"name": "bad name"}}]},
     "'bad name' is not a valid tools[0].function.name: 1-64 letters, digits, '_', '.' or "
     "'-'", "tools"),
    (openai.ChatCompletionRequest, {"model": "m", "messages": HELLO,
                                    "chat_template_kwargs": {"add_vision_id": True}},
     "unknown field 'add_vision_id' in chat_template_kwargs; chat_template_kwargs takes "
     "enable_thinking, preserve_thinking", "chat_template_kwargs"),
    (openai.TokenizeRequest, {"prompt": "x", "x": 1},
     "unknown field 'x'; this endpoint takes add_special_tokens, model, prompt", None),
    (openai.CompletionRequest, {"model": "m", "prompt": "hi", "n": 2},
     "n must be at most 1 (answers per request: 1 (send several requests for more)), got 2",
     "n"),
    (responses.ResponsesRequest, {"model": "m", "input": "hi", "store": True},
     "store must be false (nothing is stored: false or left out), got true", "store"),
    (anthropic.MessagesRequest, {"model": "m", "messages": HELLO},
     "max_tokens is required", "max_tokens"),
    (anthropic.MessagesRequest, {"model": "m", "max_tokens": 5, "temperature": 1.5,
                                 "messages": HELLO},
     "temperature must be at most 1, got 1.5", "temperature"),
])
def test_a_refused_request_says_what_was_wrong(request_model, body, said, param):
    with pytest.raises(InvalidRequestError) as refused:
        request_model.parse(body)
    assert (str(refused.value), refused.value.param) == (said, param)


def test_the_published_bodies_are_the_models_schemas():
    from adam_integrations.server.openapi import operations

    described = operations()
    for path, request_model in [("/api/chat", ollama.ChatRequest),
                                ("/v1/chat/completions", openai.ChatCompletionRequest),
                                ("/v1/messages", anthropic.MessagesRequest)]:
        body = described[path]["post"]["requestBody"]["content"]["application/json"][
            "schema"]
        own = request_model.json_schema()
        assert sorted(body["properties"]) == sorted(own["properties"])
        assert body.get("required") == own.get("required")
        assert body["properties"]["model"]["pattern"]  # held to the server's names


def test_a_users_schemas_reach_the_config_as_sent():
    """A tool's parameters and a response schema go into the model's prompt: they arrive
    key for key, in the order sent, nulls kept (LangChain writes ``properties`` before
    ``type``; reordering them changed what a small model answered)."""
    parameters = {"properties": {"name": {"type": "string", "default": None}},
                  "required": ["name"], "type": "object"}
    schema = {"properties": {"a": {"type": "integer"}}, "type": "object"}
    body = {"model": "m", "messages": HELLO, "tools": [
        {"type": "function", "function": {"name": "f", "parameters": parameters}}],
        "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
    config = openai.ChatCompletionRequest.parse(body).to_config()
    assert json.dumps(config.tools[0].parameters) == json.dumps(parameters)
    assert json.dumps(config.response_format.schema) == json.dumps(schema)
    ollama_config = ollama.ChatRequest.parse({**body, "format": schema}).to_config()
    assert json.dumps(ollama_config.tools[0].parameters) == json.dumps(parameters)
    assert json.dumps(ollama_config.response_format.schema) == json.dumps(schema)
