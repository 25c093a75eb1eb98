"""``adam serve``: an Ollama-compatible HTTP server (plus OpenAI's ``/v1``) over every
model this package can load.

    adam serve                              # 127.0.0.1:11434, like Ollama
    adam serve --host 0.0.0.0 --port 8080   # or OLLAMA_HOST=0.0.0.0:8080

Built on Starlette and uvicorn. Errors are ``{"error": "..."}`` with Ollama's status
codes: 400 bad request, 404 unknown model or route, 405 wrong method, 413 body too
large, 500 anything else. A client that disconnects mid-stream stops its generation
(the stream's task is cancelled, and the backends stop at the next token).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adam_integrations.core.errors import (
    AdamError,
    InvalidInputTypeError,
    InvalidRequestError,
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.server import ollama_api, openai_api
from adam_integrations.server.guard import RequestGuard, configured_origins, is_loopback
from adam_integrations.server.models import ServedModels
from adam_integrations.server.serving import ModelService

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434
DEFAULT_MAX_BODY = 32 * 1024 * 1024  # bytes; a few thousand long texts to embed


def create_app(models: ServedModels | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY, *, bind_host: str = DEFAULT_HOST,
               allowed_hosts: Sequence[str] = (), origins: Sequence[str] = ()) -> Starlette:
    """The ASGI app: Ollama's ``/api/*`` and OpenAI's ``/v1/*`` routes over one
    ``ModelService``, behind the Host and Origin checks of ``server.guard`` (the Host
    check on while ``bind_host`` is a loopback address; ``origins`` extend Ollama's
    default allowlist and ``OLLAMA_ORIGINS``)."""
    service = ModelService(models)
    app = Starlette(routes=[*ollama_api.routes(service), *openai_api.routes(service)],
                    exception_handlers={AdamError: _adam_error, HTTPException: _http_error,
                                        Exception: _internal_error})
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(RequestGuard, check_hosts=is_loopback(bind_host),
                       allowed_hosts=allowed_hosts, origins=configured_origins(origins))
    return app


def _status(error: AdamError) -> int:
    if isinstance(error, ModelNotFoundError):
        return 404
    if isinstance(error, (InvalidRequestError, InvalidInputTypeError,
                          UnsupportedOperationError)):
        return 400
    return 500


async def _adam_error(request: Request, error: Exception) -> Response:
    status = _status(error) if isinstance(error, AdamError) else 500
    return JSONResponse({"error": str(error)}, status_code=status)


async def _http_error(request: Request, error: Exception) -> Response:
    if not isinstance(error, HTTPException):
        return await _internal_error(request, error)
    return JSONResponse({"error": error.detail}, status_code=error.status_code)


async def _internal_error(request: Request, error: Exception) -> Response:
    logger.exception("request failed")
    return JSONResponse({"error": f"{type(error).__name__}: {error}"}, status_code=500)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, whether the client declared
    the length or streams the body in chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return (f"request body too large: the limit is {self.max_bytes} bytes "
                "(adam serve --max-body-mb raises it)")

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"error": self._message()}, status_code=413)
        await response(scope, receive, send)


def host_and_port(host: str | None, port: int | None) -> tuple[str, int]:
    """The address to bind: arguments first, then ``OLLAMA_HOST`` (``host[:port]`` or a
    URL), then 127.0.0.1:11434.

    Example:
        >>> host_and_port(None, None) if "OLLAMA_HOST" not in os.environ else None
        ('127.0.0.1', 11434)
        >>> host_and_port("0.0.0.0", 8080)
        ('0.0.0.0', 8080)
    """
    env_host, env_port = DEFAULT_HOST, DEFAULT_PORT
    raw = os.environ.get("OLLAMA_HOST", "").strip()
    if raw:
        parsed = urlparse(raw if "://" in raw else f"http://{raw}")
        env_host = parsed.hostname or DEFAULT_HOST
        env_port = parsed.port or DEFAULT_PORT
    return host or env_host, port or env_port


def serve(host: str | None = None, port: int | None = None, *,
          max_body_bytes: int = DEFAULT_MAX_BODY, log_level: str = "info",
          model_type: str = "auto", allowed_hosts: Sequence[str] = (),
          origins: Sequence[str] = ()) -> None:
    """Run the server until interrupted; ``model_type`` names the backend every model is
    served on ("auto": each model's automatic choice)."""
    import uvicorn

    bind_host, bind_port = host_and_port(host, port)
    config: dict[str, Any] = {"host": bind_host, "port": bind_port, "log_level": log_level}
    app = create_app(ServedModels(model_type=model_type), max_body_bytes=max_body_bytes,
                     bind_host=bind_host, allowed_hosts=allowed_hosts, origins=origins)
    uvicorn.run(app, **config)
