"""Anthropic's Messages API on ``adam serve`` (``/v1/messages``, with streaming, and
``/v1/messages/count_tokens``), as Ollama offers it. The wire format is ``wire.anthropic``;
the model work is the server's ``ModelService``, as for every other route. The
``anthropic`` SDK's ``x-api-key`` header is read as an API key (``server.guard``), and
errors are Anthropic's error object (``server.errors``)."""

from __future__ import annotations

import asyncio
from typing import Any

from anthropic.types import Message, MessageTokensCount
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adam_integrations.core.errors import AdamError, UnsupportedOperationError
from adam_integrations.server.errors import status_of
from adam_integrations.server.openapi import (
    answer,
    json_content,
    operation,
    request_body,
    streamed,
)
from adam_integrations.server.request_body import read_json
from adam_integrations.server.serving import ModelService
from adam_integrations.server.streams import built_answer
from adam_integrations.wire import anthropic as wire


def routes(service: ModelService) -> list[Route]:
    api = AnthropicApi(service)
    return [Route("/v1/messages", api.messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", api.count_tokens, methods=["POST"])]


class AnthropicApi:
    """The ``/v1/messages`` handlers."""

    def __init__(self, service: ModelService) -> None:
        self.service = service

    async def messages(self, request: Request) -> Response:
        body = await read_json(request)
        served = await self.service.get(body.get("model"))
        asked = wire.MessagesRequest.parse(body)
        messages, config = asked.conversation(), asked.to_config()
        answer = await self.service.chat(served, messages, config)
        return await built_answer(answer.chunks, wire.MessageBuilder(body["model"]),
                                  stream=bool(body.get("stream")), error_event=_error_event)

    async def count_tokens(self, request: Request) -> Response:
        """The tokens the prompt takes: the model's chat template over the messages,
        system prompt and tools, counted by its own tokenizer."""
        body = await read_json(request)
        served = await self.service.get(body.get("model"))
        asked = wire.CountTokensRequest.parse(body)
        messages, config = asked.conversation(), asked.to_config()
        await self.service.load(served)
        backend = served.backend
        render = getattr(backend, "render_chat", None)
        if render is None:
            raise UnsupportedOperationError(
                f"{body['model']!r} runs on another server, whose prompt this one cannot "
                "count; count with that server")
        conversation = served.conversation(messages)
        count = await asyncio.to_thread(lambda: backend.count_tokens(
            render(conversation, config)))
        return JSONResponse({"input_tokens": count})


def _error_event(error: Exception) -> dict[str, Any]:
    """A Messages stream's ``error`` event, as Anthropic's."""
    return wire.error_object(status_of(error) if isinstance(error, AdamError) else 500,
                             str(error))


# -- this dialect's part of /openapi.json (server.openapi) ------------------------
OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/v1/messages": {"post": operation(
        "/v1/messages", "an Anthropic Messages API answer (events when stream=true)",
        streamed(answer(Message), "text/event-stream",
                 {"type": "object", "required": ["type"]}),
        request_body(wire.MessagesRequest))},
    "/v1/messages/count_tokens": {"post": operation(
        "/v1/messages/count_tokens", "the tokens a Messages request's prompt takes", {
            "content": json_content(answer(MessageTokensCount))},
        request_body(wire.CountTokensRequest))},
}
"""This dialect's routes as ``/openapi.json`` describes them (``server.openapi``)."""
