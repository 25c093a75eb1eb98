"""Wire-format tests of the OpenAI-compatible backend for what is specific to vLLM and
SGLang. No vLLM or SGLang runs here (they need GPUs), so a loopback server records what
the backend sends and answers with responses shaped as those engines' documentation
shows them; the real-server tests are ``tests/integration/test_openai_compat.py``
(llama-cpp-python's server and ``adam serve``).

Shapes and where they come from:

- ``/v1/models`` with ``max_model_len``: vLLM's OpenAI-compatible server (its ``ModelCard``
  carries ``max_model_len``; https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html).
- streamed reasoning as ``delta.reasoning`` (vLLM 0.11 and later) or
  ``delta.reasoning_content`` (vLLM before the rename, and SGLang's reasoning parser):
  https://docs.vllm.ai/en/v0.11.2/features/reasoning_outputs/ ("reasoning used to be
  called reasoning_content"), https://docs.vllm.ai/en/v0.10.0/features/reasoning_outputs.html,
  https://docs.sglang.ai/advanced_features/separate_reasoning.html.
- Qwen3's switch as ``chat_template_kwargs: {"enable_thinking": false}``: the same vLLM
  page ("To disable it, you must pass enable_thinking=False in your chat_template_kwargs")
  and SGLang's.
- ``top_k`` and other non-OpenAI sampling fields in the body (``extra_body``): vLLM's
  OpenAI-compatible server page ("vLLM supports some parameters that are not supported by
  OpenAI, top_k for example").
- ``POST /tokenize`` answering ``{"count", "max_model_len", "tokens"}``: vLLM's Tokenizer
  API on the same page.
- tool-call deltas split across chunks (``index``, ``id`` and ``name`` first, then pieces
  of ``arguments``) and a final usage chunk with empty ``choices``
  (``stream_options.include_usage``): OpenAI's streaming format, which vLLM follows.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from adam_integrations.backends.remote.openai_compat import SGLangModel, VLLMModel
from adam_integrations.core.errors import InvalidRequestError, ServerBusyError
from tests.helpers import ThreadedServer

MODEL = "Qwen/Qwen3-8B"


class Engine:
    """A recording server: ``requests`` holds every body; ``script`` the chunks to send."""

    def __init__(self, reasoning_field: str) -> None:
        self.reasoning_field = reasoning_field
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[tuple[int, dict]] = []
        self.app = Starlette(routes=[
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/tokenize", self.tokenize, methods=["POST"])])

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{
            "id": MODEL, "object": "model", "created": 0, "owned_by": "vllm", "root": MODEL,
            "parent": None, "max_model_len": 32768, "permission": []}]})

    async def tokenize(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append({"path": "/tokenize", **body})
        tokens = list(range(len(body["prompt"].split())))
        return JSONResponse({"count": len(tokens), "max_model_len": 32768, "tokens": tokens})

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        if self.fail_next:
            status, error = self.fail_next.pop(0)
            return JSONResponse(error, status_code=status)
        return StreamingResponse(self._events(body), media_type="text/event-stream")

    async def _events(self, body: dict[str, Any]):
        def event(delta: dict | None, finish: str | None = None, usage: dict | None = None):
            payload: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                                       "created": 0, "model": MODEL, "choices": []}
            if delta is not None:
                payload["choices"] = [{"index": 0, "delta": delta, "logprobs": None,
                                       "finish_reason": finish}]
            if usage is not None:
                payload["usage"] = usage
            return f"data: {json.dumps(payload)}\n\n"

        yield event({"role": "assistant", "content": ""})
        thinking = (body.get("chat_template_kwargs") or {}).get("enable_thinking", True)
        if thinking:
            yield event({self.reasoning_field: "The user wants "})
            yield event({self.reasoning_field: "the weather."})
        if body.get("tools"):
            yield event({"tool_calls": [{"index": 0, "id": "chatcmpl-tool-1", "type":
                                         "function", "function": {"name": "get_weather",
                                                                  "arguments": ""}}]})
            for piece in ('{"city": ', '"Oslo"}'):
                yield event({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            yield event({}, "tool_calls")
        else:
            for piece in ("It is ", "sunny."):
                yield event({"content": piece})
            yield event({}, "stop")
        yield event(None, usage={"prompt_tokens": 11, "completion_tokens": 7,
                                 "total_tokens": 18})
        yield "data: [DONE]\n\n"


@pytest.fixture(params=[("vllm", "reasoning"), ("vllm", "reasoning_content"),
                        ("sglang", "reasoning_content")], ids=["vllm", "vllm-old", "sglang"])
def engine(request):
    kind, field = request.param
    fake = Engine(field)
    running = ThreadedServer(fake.app)
    running.start()
    model_class = VLLMModel if kind == "vllm" else SGLangModel
    fake.model = model_class(f"{kind}:{MODEL}@{running.url}/v1", max_retries=2)
    yield fake
    running.stop()


ASK = [{"role": "user", "content": "Weather in Oslo?"}]
WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


def test_reasoning_is_read_from_either_field_and_split_from_the_answer(engine):
    answer = engine.model.chat(ASK, max_tokens=32)
    assert answer.thinking == "The user wants the weather."
    assert answer.text == "It is sunny."
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 7)
    sent = engine.requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 32 and sent["model"] == MODEL


def test_think_switch_goes_as_chat_template_kwargs(engine):
    answer = engine.model.chat(ASK, think=False)
    assert engine.requests[-1]["chat_template_kwargs"] == {"enable_thinking": False}
    assert answer.thinking == "" and answer.text == "It is sunny."
    engine.model.chat(ASK)
    assert "chat_template_kwargs" not in engine.requests[-1]  # unset: the engine's default


def test_sampling_beyond_openai_goes_in_the_body(engine):
    engine.model.chat(ASK, top_k=20, min_p=0.0, repetition_penalty=1.05, temperature=0.6,
                      top_p=0.95, seed=7, stop=["\n\n"])
    sent = engine.requests[-1]
    assert (sent["top_k"], sent["min_p"], sent["repetition_penalty"]) == (20, 0.0, 1.05)
    assert (sent["temperature"], sent["top_p"], sent["seed"], sent["stop"]) == (
        0.6, 0.95, 7, ["\n\n"])


@pytest.mark.parametrize(("choice", "sent"), [
    ("required", "required"), ("auto", "auto"),
    ("get_weather", {"type": "function", "function": {"name": "get_weather"}})])
def test_tool_calls_are_assembled_from_their_deltas(engine, choice, sent):
    answer = engine.model.chat(ASK, tools=WEATHER, tool_choice=choice)
    assert engine.requests[-1]["tool_choice"] == sent
    assert engine.requests[-1]["tools"][0]["function"]["name"] == "get_weather"
    [call] = answer.tool_calls
    assert (call.name, call.arguments, call.id) == ("get_weather", {"city": "Oslo"},
                                                    "chatcmpl-tool-1")


def test_earlier_reasoning_is_passed_back_in_a_tool_loop(engine):
    engine.model.chat([*ASK, {"role": "assistant", "content": "", "thinking": "I should call.",
                              "tool_calls": [{"id": "c1", "type": "function", "function": {
                                  "name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
                       {"role": "tool", "tool_call_id": "c1", "content": "sunny"}],
                      tools=WEATHER)
    assistant = engine.requests[-1]["messages"][1]
    assert assistant["reasoning_content"] == "I should call."
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'
    assert engine.requests[-1]["messages"][2]["tool_call_id"] == "c1"


def test_context_window_from_max_model_len_and_tokens_from_tokenize(engine):
    assert engine.model.info().context_window == 32768
    if isinstance(engine.model, VLLMModel):
        assert engine.model.count_tokens("one two three") == 3
        assert engine.requests[-1]["path"] == "/tokenize"
        assert engine.requests[-1]["prompt"] == "one two three"


def test_an_engine_that_rejects_required_says_so(engine):
    engine.fail_next.append((400, {"object": "error", "type": "BadRequestError", "code": 400,
                                   "message": "tool_choice must be 'auto' or a named tool"}))
    with pytest.raises(InvalidRequestError, match=r"tool_choice must be.*older vLLM"):
        engine.model.chat(ASK, tools=WEATHER, tool_choice="required")


def test_busy_answers_are_retried_then_reported(engine):
    engine.fail_next.append((503, {"error": {"message": "overloaded"}}))
    assert engine.model.chat(ASK).text == "It is sunny."  # one retry, with backoff
    engine.fail_next.extend([(429, {"error": {"message": "slow down"}})] * 3)
    with pytest.raises(ServerBusyError, match="slow down"):
        engine.model.chat(ASK)


def test_the_request_format_is_read_back_as_it_was_written():
    """wire/openai.py owns the format both ways: what the OpenAI-compatible backend sends
    for a config, this server's parser reads as the same config."""
    from adam_integrations.backends.remote.openai_compat import ENGINES
    from adam_integrations.core.tools import ResponseFormat
    from adam_integrations.core.types import GenerationConfig
    from adam_integrations.wire import openai as wire

    hello = [{"role": "user", "content": "hi"}]
    config = GenerationConfig(
        temperature=0.3, top_p=0.9, seed=7, max_tokens=40, stop=["END"],
        presence_penalty=0.5, frequency_penalty=0.25, logprobs=True, top_logprobs=2,
        tools=[{"type": "function", "function": {"name": "f", "description": "",
                                                 "parameters": {"type": "object"}}}],
        tool_choice="f", parallel_tool_calls=False, think=False, reasoning_effort=None)
    body, forced = wire.chat_request_to_wire("m", [], config, ENGINES["vllm"])
    assert not forced and body["chat_template_kwargs"] == {"enable_thinking": False}
    read = wire.ChatCompletionRequest.parse({**body, "messages": hello}).to_config()
    for field in ("temperature", "top_p", "seed", "max_tokens", "stop", "presence_penalty",
                  "frequency_penalty", "logprobs", "top_logprobs", "tool_choice",
                  "parallel_tool_calls", "think"):
        assert getattr(read, field) == getattr(config, field), field
    assert read.tool_names == config.tool_names
    structured = GenerationConfig(response_format=ResponseFormat({"type": "object"}))
    body, _ = wire.chat_request_to_wire("m", [], structured, ENGINES["openai"])
    assert wire.ChatCompletionRequest.parse(
        {"model": "m", "messages": hello, "response_format": body["response_format"]}
    ).to_config().response_format == structured.response_format
