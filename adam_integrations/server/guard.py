"""Who may talk to ``adam serve``: the Host header (DNS rebinding) and the Origin header (web
pages), checked before any route runs, with CORS answers for the origins allowed.

- **Host**: while the server listens on a loopback address, a request must name this
  machine: a loopback, private, link-local or unspecified IP, one of this machine's
  addresses, no host at all, ``localhost``, this machine's hostname, or a name under
  ``.localhost``, ``.local`` or ``.internal`` (any port); plus the names given with
  ``--allowed-hosts``. Anything else gets 403 (a web page that rebinds its own name to
  127.0.0.1 still sends its own name). On other bind addresses the check is off unless
  ``--allowed-hosts`` names hosts. (Ollama fixed the same hole, CVE-2024-28224, with an
  allowed-hosts check.)
- **Origin**: a request from a web page carries an ``Origin``; unless it is on the
  allowlist (Ollama's defaults: ``http(s)://localhost``, ``127.0.0.1`` and ``0.0.0.0`` on
  any port, ``app://``, ``file://``, ``tauri://``, ``vscode-webview://``, ``vscode-file://``
  and browser extensions; plus ``OLLAMA_ORIGINS`` and ``--origins``, ``*`` as a wildcard)
  it gets 403 on every route: simple POSTs too, which a browser sends without asking
  first. Allowed origins get CORS headers and preflight answers (Starlette's
  ``CORSMiddleware``).
- **API keys** (optional): with keys set, every route but ``GET /`` needs
  ``Authorization: Bearer <key>`` (or ``x-api-key: <key>``, as the ``anthropic`` SDK
  sends it); the key is compared in constant time (hashes of equal
  length, every key compared), and anything else gets 401. Preflights are answered
  without one (browsers never send credentials in them), and refusals carry the CORS
  headers, so a page on an allowed origin can read why.

Example:
    >>> host_allowed("localhost:11434", ()), host_allowed("evil.example.com", ())
    (True, False)
    >>> origin_pattern(["http://localhost"]).fullmatch("http://localhost:3000") is not None
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import os
import re
import socket
from collections.abc import Sequence
from functools import lru_cache

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from adam_integrations.server.errors import error_response

LOCAL_SUFFIXES = (".localhost", ".local", ".internal")
DEFAULT_ORIGINS = (
    *(f"{scheme}://{host}" for scheme in ("http", "https")
      for host in ("localhost", "127.0.0.1", "0.0.0.0")),
    "app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*",
    "chrome-extension://*", "moz-extension://*", "safari-web-extension://*")


def is_loopback(bind_host: str) -> bool:
    """Whether the server listens on a loopback address only."""
    if bind_host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind_host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(host_header: str, allowed_hosts: Sequence[str]) -> bool:
    """Whether a Host header names this machine (or a host the operator allowed)."""
    host = _strip_port(host_header.strip().lower())
    if not host or host == "localhost" or host.endswith(LOCAL_SUFFIXES):
        return True
    if host in {h.lower() for h in allowed_hosts} or host in _machine_names():
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return (address.is_loopback or address.is_private or address.is_unspecified
            or address.is_link_local or str(address) in _machine_addresses())


def origin_pattern(origins: Sequence[str]) -> re.Pattern[str]:
    """One regex for an origin allowlist: ``*`` matches anything, and an entry without a
    port allows any port (as Ollama's ``http://localhost`` does)."""
    parts = []
    for origin in origins:
        origin = origin.strip().rstrip("/")
        if not origin:
            continue
        regex = re.escape(origin).replace(r"\*", ".*")
        if "*" not in origin and re.fullmatch(r"[a-z][a-z0-9+.-]*://[^/:]+", origin):
            regex += r"(:\d+)?"
        parts.append(regex)
    return re.compile("|".join(parts) or "(?!)")


def configured_origins(extra: Sequence[str] = ()) -> list[str]:
    """Ollama's default origins, ``OLLAMA_ORIGINS`` (comma-separated) and ``extra``."""
    from_env = [o for o in os.environ.get("OLLAMA_ORIGINS", "").split(",") if o.strip()]
    return [*DEFAULT_ORIGINS, *from_env, *extra]


class RequestGuard:
    """ASGI middleware: the Host and Origin checks above, then CORS for allowed origins.

    Args:
        app: the application.
        check_hosts: refuse Host headers that do not name this machine.
        allowed_hosts: more host names to accept.
        origins: the origin allowlist (``configured_origins()`` by default).
        api_keys: keys one of which every request must carry (none: no key needed).
    """

    def __init__(self, app: ASGIApp, *, check_hosts: bool, allowed_hosts: Sequence[str] = (),
                 origins: Sequence[str] | None = None, api_keys: Sequence[str] = ()) -> None:
        self._allowed_hosts = tuple(allowed_hosts)
        self._check_hosts = check_hosts or bool(self._allowed_hosts)
        self._origins = origin_pattern(configured_origins() if origins is None else origins)
        self.app = CORSMiddleware(ApiKeyCheck(app, keys=api_keys),
                                  allow_origin_regex=self._origins.pattern,
                                  allow_methods=["GET", "POST", "DELETE", "HEAD", "OPTIONS"],
                                  allow_headers=["*"], max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1")
                   for key, value in scope["headers"]}
        host = headers.get("host", "")
        if self._check_hosts and not host_allowed(host, self._allowed_hosts):
            await _refuse(f"Host {host!r} is not allowed: adam serve answers requests for "
                          "this machine only (protection against DNS rebinding); to allow "
                          f"it, start adam serve with --allowed-hosts {_strip_port(host)}",
                          scope, receive, send)
            return
        origin = headers.get("origin")
        if origin is not None and not self._origins.fullmatch(origin):
            await _refuse(f"Origin {origin!r} is not allowed; to let pages from it use this "
                          f"server, start adam serve with --origins {origin} (or set "
                          "OLLAMA_ORIGINS)", scope, receive, send)
            return
        await self.app(scope, receive, send)


class ApiKeyCheck:
    """ASGI middleware: 401 unless the request carries one of ``keys`` as a Bearer token
    (``GET /`` and ``HEAD /``, the liveness check, excepted)."""

    def __init__(self, app: ASGIApp, *, keys: Sequence[str]) -> None:
        self.app = app
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or not self._digests
                or (scope["path"] == "/" and scope["method"] in ("GET", "HEAD"))):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":  # the anthropic SDK sends its key as x-api-key
            token = headers.get(b"x-api-key", b"").decode("latin-1")
        if self.known(token.strip()):
            await self.app(scope, receive, send)
            return
        message = ("a valid API key is required: send the header 'Authorization: Bearer "
                   "<key>' (the openai client's api_key; for the ollama client and "
                   "ChatOllama pass it in headers)") if not token else "invalid API key"
        await error_response(scope["path"], 401, message,
                             code="invalid_api_key" if token else None,
                             headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)

    def known(self, token: str) -> bool:
        given = hashlib.sha256(token.encode()).digest()
        matched = False
        for digest in self._digests:  # every key compared: the time says nothing
            matched |= hmac.compare_digest(given, digest)
        return matched


async def _refuse(message: str, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(scope["path"], 403, message)(scope, receive, send)


def _strip_port(host: str) -> str:
    if host.startswith("["):  # [::1]:11434
        return host[1:host.index("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


@lru_cache(maxsize=1)
def _machine_names() -> frozenset[str]:
    names = {socket.gethostname().lower()}
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn().lower())
    return frozenset(names)


@lru_cache(maxsize=1)
def _machine_addresses() -> frozenset[str]:
    import psutil

    return frozenset(address.address.split("%")[0]
                     for addresses in psutil.net_if_addrs().values()
                     for address in addresses if address.family in (socket.AF_INET,
                                                                    socket.AF_INET6))
