"""``GET /metrics``: what ``adam serve`` is doing, in Prometheus' text format
(prometheus-client), named as vLLM and llama.cpp's server name theirs where they overlap.

======================================  ===================================================
``adam_requests_total``                 HTTP requests answered, by route, method, status
``adam_request_duration_seconds``       time to the response's last byte, by route
``adam_prompt_tokens_total``            prompt tokens processed, by model
``adam_generation_tokens_total``        tokens generated, by model
``adam_time_to_first_token_seconds``    from the start of generation to the first token
``adam_generation_tokens_per_second``   decode speed of each finished generation
``adam_queue_depth``                    requests for models running or waiting now
``adam_models_loaded``                  models in memory now
``adam_model_load_seconds``             time each load took, by model
======================================  ===================================================

Each server has its own registry (two servers in one process never share counts).
Routes are labelled by the route that answered (its template: ``/api/blobs/{digest}``,
``/v1/models/{model}``), else ``unmatched`` (a scanner probing paths cannot blow up the
label set). A request whose client went away before its answer is counted with status
``499`` (as nginx logs it), not as a server error.

Example:
    >>> metrics = ServerMetrics(lambda: 0)
    >>> b"adam_queue_depth 0.0" in metrics.exposition()
    True
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adam_integrations.core.loaded import loaded_models
from adam_integrations.core.types import Usage

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0)
_SPEED_BUCKETS = (1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 1000, 2000)


class ServerMetrics:
    """The server's Prometheus metrics; ``queue_depth`` reports requests in flight."""

    def __init__(self, queue_depth: Callable[[], int]) -> None:
        registry = self.registry = CollectorRegistry()
        self.requests = Counter("adam_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=registry)
        self.request_seconds = Histogram("adam_request_duration_seconds",
                                         "Seconds to the response's last byte", ["route"],
                                         buckets=_LATENCY_BUCKETS, registry=registry)
        self.prompt_tokens = Counter("adam_prompt_tokens", "Prompt tokens processed",
                                     ["model"], registry=registry)
        self.generation_tokens = Counter("adam_generation_tokens", "Tokens generated",
                                         ["model"], registry=registry)
        self.first_token = Histogram("adam_time_to_first_token_seconds",
                                     "Seconds from the start of generation to the first "
                                     "token", ["model"], buckets=_LATENCY_BUCKETS,
                                     registry=registry)
        self.tokens_per_second = Histogram("adam_generation_tokens_per_second",
                                           "Decode speed of finished generations",
                                           ["model"], buckets=_SPEED_BUCKETS,
                                           registry=registry)
        self.load_seconds = Histogram("adam_model_load_seconds", "Seconds each load took",
                                      ["model"], buckets=_LATENCY_BUCKETS, registry=registry)
        Gauge("adam_queue_depth", "Requests for models running or waiting",
              registry=registry).set_function(queue_depth)
        Gauge("adam_models_loaded", "Models in memory", registry=registry).set_function(
            lambda: len(loaded_models.loaded()))

    def generation(self, model: str, usage: Usage | None, first_token_seconds: float | None,
                   decode_seconds: float) -> None:
        """Record one finished generation."""
        if first_token_seconds is not None:
            self.first_token.labels(model).observe(first_token_seconds)
        if usage is None:
            return
        self.prompt_tokens.labels(model).inc(usage.prompt_tokens)
        self.generation_tokens.labels(model).inc(usage.completion_tokens)
        if usage.completion_tokens > 1 and decode_seconds > 0:
            self.tokens_per_second.labels(model).observe(
                (usage.completion_tokens - 1) / decode_seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def endpoint(self, request: Request) -> Response:
        return Response(self.exposition(), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request (refusals included)."""

    def __init__(self, app: ASGIApp, *, metrics: ServerMetrics,
                 routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = [route for route in routes if isinstance(route, Route)]

    def route_of(self, scope: Scope) -> str:
        """The template of the route ``scope`` is for, else ``unmatched``."""
        for route in self.routes:
            if route.matches(scope)[0] is not Match.NONE:
                return re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # as OpenAPI writes it
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.route_of(scope)
        status = 500
        started = time.perf_counter()

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
