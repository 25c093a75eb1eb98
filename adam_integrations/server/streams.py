"""How ``adam serve`` streams an answer: NDJSON lines (Ollama's routes) or server-sent
events (OpenAI's and Anthropic's), with the first piece computed before the response
starts, so a request that fails at once still gets its own status."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from starlette.responses import JSONResponse, Response, StreamingResponse

from adam_integrations.core.types import Chunk


async def started_stream(body: AsyncIterator[bytes], media_type: str) -> Response:
    """A streaming response whose first piece is computed before the response starts,
    so a request that fails at once (a bad option, a model that cannot think) gets its
    real status instead of a 200 with an error inside."""
    try:
        first = await anext(body)
    except StopAsyncIteration:
        first = b""

    async def rest() -> AsyncIterator[bytes]:
        yield first
        async for piece in body:
            yield piece

    return StreamingResponse(rest(), media_type=media_type)


async def ndjson(lines: AsyncIterator[dict[str, Any]]) -> Response:
    """A streamed NDJSON response (see ``started_stream``); a failure after the start
    ends the stream with an ``{"error"}`` line."""

    async def encode() -> AsyncIterator[bytes]:
        started = False
        try:
            async for line in lines:
                started = True
                yield _line(line)
        except Exception as error:
            if not started:
                raise  # before the response: its own status
            yield _line({"error": str(error)})

    return await started_stream(encode(), "application/x-ndjson")


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class EventBuilder(Protocol):
    """An API's answer built from the core's chunks: its stream's events, and the
    whole answer those events describe (``wire.openai_responses``, ``wire.anthropic``)."""

    def start(self) -> list[dict[str, Any]]: ...
    def feed(self, chunk: Chunk) -> list[dict[str, Any]]: ...
    def finish(self) -> list[dict[str, Any]]: ...
    def result(self) -> dict[str, Any]: ...


async def built_answer(chunks: AsyncIterator[Chunk], builder: EventBuilder, *, stream: bool,
                       error_event: Callable[[Exception], dict[str, Any]]) -> Response:
    """The answer as named server-sent events (``stream``), or the whole of it: one code
    path, the events built either way. A failure after the first event becomes
    ``error_event(error)``."""
    if not stream:
        async for chunk in chunks:
            builder.feed(chunk)
        builder.finish()
        return JSONResponse(builder.result())

    async def events() -> AsyncIterator[bytes]:
        first = await anext(chunks, None)  # fails before the response starts
        for event in builder.start():
            yield named_event(event)
        try:
            for event in builder.feed(first) if first is not None else []:
                yield named_event(event)
            async for chunk in chunks:
                for event in builder.feed(chunk):
                    yield named_event(event)
            for event in builder.finish():
                yield named_event(event)
        except Exception as error:
            yield named_event(error_event(error))

    return await started_stream(events(), "text/event-stream")


def sse_data(data: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``data`` (OpenAI's chat and completion chunks)."""
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def named_event(event: dict[str, Any]) -> bytes:
    """One server-sent event named by its ``type``, as the Responses API and Anthropic's
    Messages API send them."""
    return (f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
            ).encode()
