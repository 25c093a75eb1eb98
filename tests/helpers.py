"""Small helpers several test modules share."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn

from adam_integrations.backends.local import compute


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


async def cancel_after_first_item(stream: Callable[[], AsyncIterator[object]]) -> None:
    """Consume ``stream()`` in a task, cancel it once the first item arrived, and check
    the task really ended cancelled."""
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in stream():
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), timeout=30)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return
    raise AssertionError("the stream finished instead of being cancelled")


def generation_idle(model: object) -> bool:
    """Whether ``model`` is generating nothing now (llama.cpp: no slot is busy;
    transformers: no batch is waiting or generating; a model on a server: a one-token
    request is answered within a second, which a server still busy with the abandoned
    answer, hundreds of tokens long, cannot do)."""
    from adam_integrations.backends.local.huggingface import HuggingFaceModel
    from adam_integrations.backends.local.llamacpp import LlamaCppModel
    from adam_integrations.backends.remote.openai_compat import OpenAICompatibleModel

    if isinstance(model, LlamaCppModel) or (isinstance(model, HuggingFaceModel)
                                            and model.is_loaded):
        return not model.generating
    if isinstance(model, OpenAICompatibleModel):
        started = time.monotonic()
        model.chat([{"role": "user", "content": "Hi"}], max_tokens=1)
        return time.monotonic() - started < 1.0
    return compute.idle()


async def idle_soon(model: object, timeout: float = 5.0) -> bool:
    """Whether ``model`` stops generating within ``timeout`` seconds."""
    return await asyncio.to_thread(wait_until, lambda: generation_idle(model), timeout)


class ThreadedServer:
    """An ASGI app under uvicorn on a free loopback port, in a thread."""

    def __init__(self, app) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                     log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        assert wait_until(lambda: self._server.started, timeout=10)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def error_message(response: Any) -> str:
    """The message of an error answer of ``adam serve``, checked to be in the route's own
    shape: OpenAI's error object on ``/v1``, Ollama's ``{"error": "..."}`` elsewhere."""
    body = response.json()
    if response.request.url.path.startswith("/v1/messages"):
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
        return body["error"]["message"]
    if response.request.url.path.startswith("/v1/"):
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, body
        assert isinstance(error["message"], str) and error["message"], body
        return error["message"]
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    return body["error"]
