"""``adam serve``: an Ollama-compatible HTTP server (plus OpenAI's ``/v1``) over every
model this package can load.

    adam serve                              # 127.0.0.1:11434, like Ollama
    adam serve --host 0.0.0.0 --port 8080   # or OLLAMA_HOST=0.0.0.0:8080

Built on Starlette and uvicorn. Errors come in the client's own shape (OpenAI's error
object on ``/v1``, Ollama's ``{"error": "..."}`` elsewhere) with the statuses of
``server.errors``. A client that disconnects mid-stream
stops its generation (the stream's task is cancelled, and the backends stop at the next
token). On SIGTERM or SIGINT the server drains (``GracefulServer``): new work gets 503,
every running request ends at once with an answer (a 503 before its first token, an error
line after), and the process exits with status 0 once they have (at most
``SHUTDOWN_GRACE_SECONDS`` later); nothing is written to disk half-way (aliases and
conversions are written to a temporary file and renamed).

Before a request exists, its connection is held to ``server.connections``' rules (time
for its headers, a limit on connections, malformed HTTP answered in the route's shape).
From outside in, every request passes: ``RequestMetrics`` (counted, refusals too), the
Host and Origin checks, CORS and the API key (``server.guard``), the queue limit and the
body limit (``server.limits``), then its route. At start, upload files a crash left in
the store are removed (``core.atomic.sweep_stale_partials``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adam_integrations.core.atomic import sweep_stale_partials
from adam_integrations.core.errors import AdamError, AddressInUseError
from adam_integrations.core.stores.ollama_store import ollama_store_roots
from adam_integrations.server.connections import (
    ConnectionPolicy,
    connection_limit,
    guarded_protocol,
    raise_file_limit,
)
from adam_integrations.server.dialects import DIALECTS
from adam_integrations.server.errors import adam_error, client_gone, http_error, internal_error
from adam_integrations.server.guard import RequestGuard, configured_origins, is_loopback
from adam_integrations.server.limits import BodyLimit, WorkLimit
from adam_integrations.server.metrics import RequestMetrics
from adam_integrations.server.models import ServedModels
from adam_integrations.server.openapi import RequestSchemas, openapi_document
from adam_integrations.server.serving import ModelService
from adam_integrations.server.settings import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    SHUTDOWN_GRACE_SECONDS,
    ServerSettings,
)

logger = logging.getLogger(__name__)

def create_app(models: ServedModels | None = None, settings: ServerSettings | None = None
               ) -> Starlette:
    """The ASGI app: Ollama's ``/api/*`` and OpenAI's ``/v1/*`` routes over one
    ``ModelService`` (``app.state.service``), plus ``/metrics`` and ``/openapi.json``
    (``server.openapi``), behind the checks above
    (the Host check on while ``settings.bind_host`` is a loopback address)."""
    settings = settings or ServerSettings()
    service = ModelService(models, settings)
    routes = [*(route for dialect in reversed(DIALECTS) for route in dialect.routes(service)),
              Route("/metrics", service.metrics.endpoint, methods=["GET"])]
    document = openapi_document([*(route.path for route in routes), "/openapi.json"],
                                secured=bool(settings.api_keys),
                                model_paths=bool(settings.model_dirs))

    async def describe(request: Request) -> Response:
        return JSONResponse(document)

    routes.append(Route("/openapi.json", describe, methods=["GET"]))
    app = Starlette(routes=routes,
                    exception_handlers={AdamError: adam_error, HTTPException: http_error,
                                        ClientDisconnect: client_gone,
                                        Exception: internal_error})
    app.state.service = service
    app.state.request_schemas = RequestSchemas(document)  # what read_json holds bodies to
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       timeout=settings.body_timeout)
    app.add_middleware(WorkLimit, workload=service.workload,
                       templates=settings.template_limits)
    app.add_middleware(RequestGuard, check_hosts=is_loopback(settings.bind_host),
                       allowed_hosts=settings.allowed_hosts,
                       origins=configured_origins(settings.origins),
                       api_keys=settings.api_keys)
    app.add_middleware(RequestMetrics, metrics=service.metrics, routes=routes)
    return app


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
          settings: ServerSettings | None = None, log_level: str = "info",
          model_type: str = "auto", named: dict[str, str] | None = None,
          backend_options: dict[str, Any] | None = None,
          loras: dict[str, str] | None = None) -> None:
    """Run the server until SIGTERM or SIGINT; ``model_type`` names the backend every
    model is served on ("auto": each model's automatic choice); ``named`` maps served
    names to model references (``adam serve --model NAME=REFERENCE``), ``loras`` served
    names to LoRA adapters (``--lora NAME=PATH``);
    ``backend_options`` go to every backend that takes them, with the settings' own
    (``parallel``, ``threads`` as ``n_threads``)."""
    bind_host, bind_port = host_and_port(host, port)
    check_address_free(bind_host, bind_port)
    settings = replace(settings or ServerSettings(), bind_host=bind_host)
    if not is_loopback(bind_host) and not settings.api_keys:
        print(f"warning: adam serve listens on {bind_host}, beyond this machine, and no API "
              "key is set: anyone who can reach the port can use every model. Set one with "
              "--api-key, --api-key-file or ADAM_API_KEY.", file=sys.stderr, flush=True)
    options = {**settings.backend_options, **(backend_options or {})}
    app = create_app(ServedModels(model_type=model_type, model_dirs=settings.model_dirs,
                                  named=named, backend_options=options, loras=loras),
                     settings)
    service: ModelService = app.state.service
    sweep_stale_partials(ollama_store_roots()[0] / "blobs")  # uploads a crash cut off
    policy = ConnectionPolicy(settings.header_timeout,
                              connection_limit(settings.max_connections, raise_file_limit()))
    config = uvicorn.Config(app, host=bind_host, port=bind_port, log_level=log_level,
                            http=guarded_protocol(policy),
                            timeout_graceful_shutdown=int(SHUTDOWN_GRACE_SECONDS))
    GracefulServer(config, service).run()


def check_address_free(host: str, port: int) -> None:
    """An AddressInUseError before anything loads when ``host:port`` is taken, saying
    what answers there (Ollama itself: 11434 is its port; another adam serve) and how to
    pick another address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
            return
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                return  # uvicorn reports other bind errors itself
    raise AddressInUseError(
        f"{host}:{port} is in use{_what_answers(host, port)}. Pick another port with "
        f"--port {port + 1} (or OLLAMA_HOST={host}:{port + 1}; clients then need that "
        "address too), or stop what runs there")


def _what_answers(host: str, port: int) -> str:
    import httpx

    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    try:
        answer = httpx.get(f"{url}/api/version", timeout=2)
        version = answer.json().get("version")
    except (httpx.HTTPError, ValueError, AttributeError):
        return ""
    if "uvicorn" in answer.headers.get("server", ""):
        return f": another adam serve answers at {url}"
    if version:
        return (f": Ollama {version} answers at {url} (11434 is Ollama's own port; "
                "`adam serve` can run beside it on another)")
    return ""


class GracefulServer(uvicorn.Server):
    """uvicorn's server with a drain before it stops: on the first SIGTERM or SIGINT it
    keeps listening, answers new work with 503 (``WorkLimit``), ends every running
    generation at once (``Workload.close``: a request still reading its prompt gets a
    503, a stream an error line), and stops once no request for a model is left (or
    ``SHUTDOWN_GRACE_SECONDS`` have passed); then uvicorn closes the connections as
    usual. The process exits with status 0, as a drained server should (uvicorn would
    raise the signal again on its way out). A second signal stops the drain; a third
    SIGINT, uvicorn's force exit."""

    def __init__(self, config: uvicorn.Config, service: ModelService) -> None:
        super().__init__(config)
        self.service = service
        self.draining_since: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.draining_since is None:
            self.draining_since = time.monotonic()
            if self._loop is not None:  # from a signal handler: onto the loop, safely
                self._loop.call_soon_threadsafe(self.service.workload.close)
            else:
                self.should_exit = True
        elif not self.should_exit:
            self.should_exit = True
        else:
            self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.draining_since is not None and not self.should_exit and (
                self.service.workload.in_flight == 0
                or time.monotonic() - self.draining_since > SHUTDOWN_GRACE_SECONDS):
            self.should_exit = True
        return await super().on_tick(counter)
