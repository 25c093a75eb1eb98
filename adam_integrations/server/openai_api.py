"""OpenAI-compatible routes (``/v1/chat/completions`` with SSE streaming,
``/v1/embeddings``, ``/v1/models``), as Ollama also offers them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.types import ChatMessage, GenerationConfig, ToolCall
from adam_integrations.server.models import ServedModels
from adam_integrations.server.ollama_api import (
    OllamaApi,
    read_json,
    started_stream,
    token_count,
)

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


def routes(models: ServedModels) -> list[Route]:
    api = OpenAIApi(models)
    return [
        Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
        Route("/v1/embeddings", api.embeddings, methods=["POST"]),
        Route("/v1/models", api.list_models, methods=["GET"]),
    ]


def openai_messages(raw: Any) -> list[ChatMessage]:
    """OpenAI chat messages (string or text-part content, tool calls with JSON-string
    arguments) as core messages."""
    if not isinstance(raw, list) or not raw:
        raise InvalidRequestError("messages must be a non-empty list")
    messages = []
    for item in raw:
        if not isinstance(item, dict) or "role" not in item:
            raise InvalidRequestError("each message needs a role")
        content = item.get("content") or ""
        if isinstance(content, list):
            if any(part.get("type") not in ("text", None) for part in content):
                raise InvalidRequestError("only text content parts are supported")
            content = "".join(part.get("text", "") for part in content)
        calls = []
        for call in item.get("tool_calls") or []:
            function = call.get("function") or {}
            arguments = function.get("arguments") or "{}"
            try:
                parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
            except ValueError as error:
                raise InvalidRequestError(f"tool call arguments are not JSON: {error}") from error
            calls.append(ToolCall(name=function.get("name", ""), arguments=parsed,
                                  id=call.get("id") or ""))
        role = "system" if item["role"] == "developer" else item["role"]
        messages.append(ChatMessage(role=role, content=content, tool_calls=calls,
                                    tool_call_id=item.get("tool_call_id"),
                                    name=item.get("name")))
    return messages


def openai_config(body: dict[str, Any]) -> GenerationConfig:
    fields: dict[str, Any] = {}
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        fields["max_tokens"] = limit
    for key in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty",
                "stop", "parallel_tool_calls"):
        if body.get(key) is not None:
            fields[key] = body[key]
    if body.get("tools"):
        fields["tools"] = body["tools"]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name")
    if choice is not None:
        fields["tool_choice"] = choice
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "text":
        fmt = None
    if fmt is not None:
        fields["response_format"] = "json" if fmt == {"type": "json_object"} else fmt
    effort = body.get("reasoning_effort")
    if effort is not None:
        fields["think"] = effort != "none"
    return GenerationConfig(**fields)


def _call_json(call: ToolCall, index: int) -> dict[str, Any]:
    return {"index": index, "id": call.id or f"call_{uuid.uuid4().hex[:8]}",
            "type": "function",
            "function": {"name": call.name,
                         "arguments": json.dumps(call.arguments, ensure_ascii=False)}}


class OpenAIApi(OllamaApi):
    """The ``/v1`` handlers; they share model lookup and keep-alive with the Ollama API."""

    async def chat_completions(self, request: Request) -> Response:
        body = await read_json(request)
        served = self.models.get(body.get("model"))
        messages, config = openai_messages(body.get("messages")), openai_config(body)
        await self._load(served)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created, name = int(time.time()), body["model"]
        keep_alive = self._keep_alive({})
        stream = self._stream(served, keep_alive, served.backend.astream_chat(messages, config))

        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

            async def events() -> AsyncIterator[bytes]:
                def event(delta: dict[str, Any], finish: str | None = None,
                          usage: dict[str, Any] | None = None) -> bytes:
                    payload: dict[str, Any] = {
                        "id": completion_id, "object": "chat.completion.chunk",
                        "created": created, "model": name,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                    if usage is not None:
                        payload["usage"] = usage
                    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

                first = await anext(stream, None)  # fails before the response starts
                yield event({"role": "assistant", "content": ""})
                calls = 0
                async for chunk in _chain(first, stream):
                    if chunk.thinking:
                        yield event({"reasoning_content": chunk.thinking})
                    if chunk.text:
                        yield event({"content": chunk.text})
                    for call in chunk.tool_calls:
                        yield event({"tool_calls": [_call_json(call, calls)]})
                        calls += 1
                    if chunk.finish_reason is not None:
                        finish = "tool_calls" if calls else _FINISH.get(chunk.finish_reason,
                                                                        "stop")
                        yield event({}, finish)
                        if include_usage and chunk.usage is not None:
                            usage = _usage(chunk.usage)
                            payload = {"id": completion_id, "object": "chat.completion.chunk",
                                       "created": created, "model": name, "choices": [],
                                       "usage": usage}
                            yield f"data: {json.dumps(payload)}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return await started_stream(events(), "text/event-stream")

        text, thinking, calls, finish, usage = "", "", [], "stop", None
        async for chunk in stream:
            text += chunk.text
            thinking += chunk.thinking
            calls.extend(chunk.tool_calls)
            if chunk.finish_reason is not None:
                finish, usage = chunk.finish_reason, chunk.usage
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if thinking:
            message["reasoning_content"] = thinking
        if calls:
            message["tool_calls"] = [_call_json(c, i) for i, c in enumerate(calls)]
            finish = "tool_calls"
        return JSONResponse({
            "id": completion_id, "object": "chat.completion", "created": created,
            "model": name, "system_fingerprint": "adam",
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            "usage": _usage(usage)})

    async def embeddings(self, request: Request) -> Response:
        body = await read_json(request)
        served = self.models.get(body.get("model"), embedding=True)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str)
                                                               for t in texts):
            raise InvalidRequestError("input must be a string or a non-empty list of strings")
        vectors = await self._embed(served, self._keep_alive({}), texts)
        tokens = await token_count(served, texts)
        return JSONResponse({
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": v}
                     for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def list_models(self, request: Request) -> Response:
        entries = await asyncio.to_thread(self.models.listed)
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": int(time.time()), "owned_by": "adam"}
            for name, _ in entries]})


async def _chain(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    if first is not None:
        yield first
    async for item in rest:
        yield item


def _usage(usage: Any) -> dict[str, Any]:
    if usage is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}
