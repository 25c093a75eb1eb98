"""How much work one ``adam serve`` takes on: request bodies (``BodyLimit``: 413 past the
size limit, 408 for a client that pauses mid-body) and requests for models and uploads at
once (``WorkLimit``, 503 past ``OLLAMA_MAX_QUEUE``, and while the server shuts down).
Prompt length, generated tokens and the per-request time limit are checked where the
work is done (``serving.ModelService``).

A request counts against the queue from its first byte to its response's last: a
stream holds its place until it ends. A slow reader does not hold a model longer than
its own generation, though: generation runs ahead of the client into a buffer
(``core.streaming.iterate_in_thread``), so the model is free for the next request as soon
as the answer is computed, however slowly it is read.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adam_integrations.core.chat_template import (
    DEFAULT_LIMITS,
    TemplateLimits,
    template_limits,
)
from adam_integrations.server.errors import error_response

T = TypeVar("T")

# The routes that run a model (the others only read state): what the queue limit counts.
MODEL_ROUTES = frozenset({"/api/chat", "/api/generate", "/api/embed", "/api/embeddings",
                          "/api/pull", "/v1/chat/completions", "/v1/completions",
                          "/v1/embeddings", "/v1/responses", "/v1/messages",
                          "/v1/rerank", "/rerank", "/v2/rerank", "/api/rerank"})


def counts_as_work(scope: Scope) -> bool:
    """Whether a request holds a place in the queue (and the shutdown waits for it): the
    routes that run a model, and blob uploads (a shutdown must not cut one off unseen)."""
    return scope["path"] in MODEL_ROUTES or (
        scope["method"] == "POST" and scope["path"].startswith("/api/blobs/"))


@dataclass
class Workload:
    """Requests for models in flight now, and whether the server is shutting down.

    ``waits`` are the running generations' waits for their next chunk (their
    ``asyncio.timeout_at`` contexts): ``close`` ends them all at once, so a request that is
    still reading a long prompt gets its answer (a 503, or an error line) at once instead
    of being cut off when the shutdown's grace period ends.
    """

    max_queue: int
    in_flight: int = 0
    closing: threading.Event = field(default_factory=threading.Event)
    waits: set[asyncio.Timeout] = field(default_factory=set)

    async def next_item(self, items: AsyncIterator[T], deadline: float | None,
                        shutting_down: Callable[[], Exception]) -> T:
        """The next of ``items`` (StopAsyncIteration at their end), unless the server
        starts shutting down first (``shutting_down()`` is raised, at once even while
        waiting) or the loop's clock passes ``deadline`` (TimeoutError)."""
        if self.closing.is_set():
            raise shutting_down()
        try:
            async with asyncio.timeout_at(deadline) as wait:
                self.waits.add(wait)
                try:
                    return await anext(items)
                finally:
                    self.waits.discard(wait)
        except TimeoutError:
            if self.closing.is_set():
                raise shutting_down() from None
            raise

    def close(self) -> None:
        """Start shutting down: new work is refused, and every wait for a chunk ends now
        (call it on the event loop's thread)."""
        self.closing.set()
        now = asyncio.get_running_loop().time()
        for wait in list(self.waits):
            if not wait.expired():
                wait.reschedule(now)


class WorkLimit:
    """ASGI middleware: 503 "server busy" past ``workload.max_queue`` requests for models
    at once, and for new ones once the server is shutting down; every request renders
    chat templates within ``templates`` (``core.chat_template``)."""

    def __init__(self, app: ASGIApp, *, workload: Workload,
                 templates: TemplateLimits | None = None) -> None:
        self.app = app
        self.workload = workload
        self.templates = templates or DEFAULT_LIMITS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with template_limits(self.templates):
            if counts_as_work(scope):
                await self._counted(scope, receive, send)
            else:
                await self.app(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        workload = self.workload
        if workload.closing.is_set():
            await _busy("the server is shutting down; retry on another server or once "
                        "it is back", scope, receive, send)
            return
        if workload.in_flight >= workload.max_queue:
            await _busy(f"server busy: {workload.in_flight} requests are running or "
                        f"waiting (the limit, OLLAMA_MAX_QUEUE, is {workload.max_queue}); "
                        "retry shortly", scope, receive, send)
            return
        workload.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            workload.in_flight -= 1


async def _busy(message: str, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(scope["path"], 503, message)(scope, receive, send)


UNLIMITED_BODIES = ("/api/blobs/",)
"""Routes whose body ``BodyLimit`` does not hold to ``max_body_bytes``: a model's weights
are uploaded there (streamed to disk, never held in memory, under the upload limit and
the free-space reserve of ``ollama_api.OllamaApi.blob``)."""


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, whether the client declared
    the length or streams the body in chunks (``UNLIMITED_BODIES`` excepted), and a
    client that pauses more than ``timeout`` seconds while sending one with 408."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limited = not scope["path"].startswith(UNLIMITED_BODIES)
        declared = dict(scope["headers"]).get(b"content-length")
        if limited and declared is not None and declared.isdigit() \
                and int(declared) > self.max_bytes:
            await error_response(scope["path"], 413, self._message())(scope, receive, send)
            return
        received = 0
        complete = False

        async def checked() -> Message:
            nonlocal received, complete
            if complete:  # the body is in; later reads wait for a disconnect, untimed
                return await receive()
            try:
                async with asyncio.timeout(self.timeout):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, f"the request body paused for more than "
                                         f"{self.timeout:g} seconds; send it at once "
                                         "(adam serve --body-timeout)") from None
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if limited and received > self.max_bytes:
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, checked, send)

    def _message(self) -> str:
        return (f"request body too large: the limit is {self.max_bytes} bytes "
                "(adam serve --max-body-mb raises it)")
