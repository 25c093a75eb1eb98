"""Connections to ``adam serve`` that hold nothing for long: a time limit for a request's
headers, a limit on connections with the longest-waiting idle one closed first, the
process's file-descriptor limit raised at start, and malformed HTTP answered in the
route's own error shape.

uvicorn parses HTTP with httptools; ``guarded_protocol`` returns its protocol class with
those rules added (the request body's time limit is ``limits.BodyLimit``'s, which can
answer in the route's shape):

- **headers**: a connection gets ``header_timeout`` seconds from its first byte (or from
  the end of its previous answer) to the end of its request's headers; a client that
  trickles them (slowloris) is answered 408 and closed.
- **connections**: past ``max_connections``, a new connection closes the one that has
  waited longest without sending a whole request's headers (an idle keep-alive or a
  trickling client), so thousands of idle sockets never lock out a client that asks
  promptly; when every connection is in the middle of a request, the new one is closed.
- **file descriptors**: ``raise_file_limit`` lifts the soft limit to the hard one, and the
  connection limit stays below it, so the server never runs out of descriptors for its
  model files and answers.
- **malformed HTTP** (a ``Content-Length`` beside ``Transfer-Encoding: chunked``, two
  ``Content-Length`` headers, a bad chunk size): 400 with the parser's reason, as JSON in
  the route's shape when the path was read (``errors.error_body``), not uvicorn's plain
  text.

Example:
    >>> policy = ConnectionPolicy(header_timeout=10.0, max_connections=100)
    >>> guarded_protocol(policy).__name__
    'GuardedHttpProtocol'
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
from dataclasses import dataclass, field
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from adam_integrations.server.errors import error_body

logger = logging.getLogger(__name__)

DESCRIPTORS_KEPT = 256
"""File descriptors kept back from the connection limit: model files, the log, threads'
pipes, the sockets the server opens itself."""


@dataclass
class ConnectionPolicy:
    """The rules of one server's connections, and the connections waiting for headers
    (oldest first: what the limit closes first)."""

    header_timeout: float
    max_connections: int
    waiting: dict[GuardedHttpProtocol, None] = field(default_factory=dict)
    closed_at_limit: int = 0  # connections closed by the limit (logged now and then)
    last_warning: float = float("-inf")

    def note_closed_at_limit(self, now: float) -> None:
        """Count a connection closed by the limit; a warning at most every 10 seconds
        (a flood of connections must not flood the log)."""
        self.closed_at_limit += 1
        if now - self.last_warning >= 10.0:
            self.last_warning = now
            logger.warning("connection limit (%d) reached: %d connections closed so far, "
                           "the ones waiting longest for a request first",
                           self.max_connections, self.closed_at_limit)


def guarded_protocol(policy: ConnectionPolicy) -> type[GuardedHttpProtocol]:
    """uvicorn's httptools protocol class under ``policy`` (``uvicorn.Config(http=...)``)."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"policy": policy})


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the rules of ``policy`` (see the module)."""

    policy: ConnectionPolicy

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self.url = b""

    # -- connections -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_headers()
        if len(self.connections) > self.policy.max_connections:
            oldest = next(iter(self.policy.waiting))  # this one, at worst
            self.policy.note_closed_at_limit(self.loop.time())
            oldest._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _close(self) -> None:
        self._stop_waiting()
        if not self.transport.is_closing():
            self.transport.close()

    # -- headers -------------------------------------------------------------------------
    def _wait_for_headers(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.policy.header_timeout,
                                                      self._headers_too_slow)
        self.policy.waiting[self] = None

    def _stop_waiting(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self.policy.waiting.pop(self, None)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._wait_for_headers()  # the clock runs from the request's first byte

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.policy.waiting[self] = None  # idle until the next request: may be closed

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self._send_error(408, f"the request's headers took longer than "
                              f"{self.policy.header_timeout:g} seconds; send them at once "
                              "(adam serve --header-timeout)")

    # -- malformed requests --------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as error:
            reason = str(error.args[0] if error.args else error) or "malformed"
            self._send_error(400, f"invalid HTTP request: {reason}")

    def send_400_response(self, msg: str) -> None:
        self._send_error(400, msg)

    def _send_error(self, status: int, message: str) -> None:
        """Answer ``status`` in the shape of the route asked for (Ollama's when no path
        was read yet) and close the connection."""
        self._stop_waiting()
        if self.transport.is_closing():
            return
        path = "/"
        with contextlib.suppress(httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            if self.url:
                path = httptools.parse_url(self.url).path.decode("ascii")
        body = json.dumps(error_body(path, status, message)).encode()
        self.transport.write(b"".join([
            STATUS_LINE[status], b"content-type: application/json\r\n",
            b"content-length: ", str(len(body)).encode(), b"\r\n",
            b"connection: close\r\n\r\n", body]))
        self.transport.close()


def raise_file_limit() -> int:
    """Lift this process's soft limit on open files to its hard limit; the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if wanted > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return soft


def connection_limit(asked: int, file_limit: int) -> int:
    """``asked``, or fewer where the file limit would run out first.

    Example:
        >>> connection_limit(4096, 1024), connection_limit(100, 1_048_576)
        (768, 100)
    """
    return max(1, min(asked, file_limit - DESCRIPTORS_KEPT))
