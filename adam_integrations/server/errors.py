"""How ``adam serve`` answers an error: with the status it deserves, in the client's own
shape.

Each route answers in its dialect's shape (``server.dialects``):

- ``/v1/messages`` answers Anthropic's, ``{"type": "error", "error": {"type",
  "message"}}``, which the ``anthropic`` client reads;
- the other ``/v1/*`` routes (and vLLM's ``/tokenize``, ``/detokenize``,
  ``/tokenizer_info``) answer OpenAI's error object, ``{"error": {"message",
  "type", "param", "code"}}``, which the ``openai`` client reads into its exceptions
  (``BadRequestError: ... 'max_tokens' must be at least 1``);
- every other route answers Ollama's ``{"error": "<message>"}``.

Statuses: 400 a bad request (name, field, option, message, prompt length), 401 no or
wrong API key, 403 a Host or Origin refused, 404 no such model or route, 405 a method the
route does not take (with ``Allow``), 408 a client too slow to send its request, 409 a
model name someone else's model has, 413 a body or upload too large, 422 a model that
exists but cannot be used (a corrupt or unsupported file: the message says which and
how to repair it), 503 busy, shutting down or past the time limit (with
``Retry-After``), 507 no room on disk for an upload (or for the reserve kept free). 500 is left
for a bug: it is logged with its traceback and answered without one.

Example:
    >>> error_body("/v1/models", 404, "model 'x' not found", code="model_not_found")["error"]
    {'message': "model 'x' not found", 'type': 'invalid_request_error', 'param': None, \
'code': 'model_not_found'}
    >>> error_body("/api/chat", 400, "messages must be a list")
    {'error': 'messages must be a list'}
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adam_integrations.core.errors import (
    AdamError,
    AlreadyExistsError,
    InvalidInputTypeError,
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    RequestTimeoutError,
    ServerBusyError,
    StorageFullError,
    TooLargeError,
    UnknownBackendError,
    UnknownDomainError,
    UnsupportedOperationError,
)
from adam_integrations.server.dialects import dialect_of

logger = logging.getLogger(__name__)


def error_body(path: str, status: int, message: str, *, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """The error object for a route, in its dialect's shape (``server.dialects``); the
    message as ``shown`` makes it."""
    message = shown(message)
    param = None if param is None else shown(param)
    return dialect_of(path).error_object(status, message, param, code)


def shown(text: str) -> str:
    """``text`` as a client may see it: this machine's folders named, not spelled out
    (``redact_paths``), and anything that is not valid Unicode (a lone surrogate a client
    sent, echoed back) as a ``\\udXXX`` escape, so the answer can always be encoded.

    Example:
        >>> shown("key '\\ud800' is not valid")
        "key '\\\\ud800' is not valid"
    """
    return redact_paths(text).encode("utf-8", "backslashreplace").decode("utf-8")


def redact_paths(text: str) -> str:
    """``text`` with this machine's folders (Ollama's store, the Hugging Face cache, this
    package's cache, the Python installation, the home folder) written as names, so an
    answer never tells a client where the server keeps its files.

    Example:
        >>> redact_paths(str(Path.home() / "notes.txt"))
        '~/notes.txt'
    """
    for root, name in _known_roots():
        if root in text:
            text = text.replace(root, name)
    return text


def _known_roots() -> list[tuple[str, str]]:
    from adam_integrations.core.paths import cache_root
    from adam_integrations.core.stores.hub import cache_root as hub_cache_root
    from adam_integrations.core.stores.ollama_store import ollama_store_roots

    roots = [(str(root), "<ollama models>") for root in ollama_store_roots()]
    roots += [(str(hub_cache_root()), "<hf cache>"), (str(cache_root()), "<adam cache>"),
              (sys.prefix, "<python>"), (sys.base_prefix, "<python>"),
              (str(Path.home()), "~")]
    found = {}
    for root, name in roots:
        for spelling in {root, os.path.realpath(root)}:
            if len(spelling) > 1:
                found.setdefault(spelling, name)
    return sorted(found.items(), key=lambda pair: -len(pair[0]))  # the deepest first


def error_response(path: str, status: int, message: str, *, param: str | None = None,
                   code: str | None = None, headers: Mapping[str, str] | None = None
                   ) -> Response:
    """A JSON error answer for ``path`` (``Retry-After: 1`` on a 503)."""
    headers = dict(headers or {})
    if status == 503:
        headers.setdefault("Retry-After", "1")
    return JSONResponse(error_body(path, status, message, param=param, code=code),
                        status_code=status, headers=headers or None)


def status_of(error: AdamError) -> int:
    """The HTTP status an error deserves."""
    if isinstance(error, ModelNotFoundError):
        return 404
    if isinstance(error, AlreadyExistsError):
        return 409
    if isinstance(error, TooLargeError):
        return 413
    if isinstance(error, StorageFullError):
        return 507
    if isinstance(error, (ServerBusyError, RequestTimeoutError)):
        return 503
    if isinstance(error, ModelLoadError):
        return 422
    if isinstance(error, (InvalidRequestError, InvalidInputTypeError,
                          UnsupportedOperationError, UnknownBackendError,
                          UnknownDomainError)):
        return 400
    return 500


def code_of(error: AdamError) -> str | None:
    """OpenAI's ``code`` for an error, where OpenAI has one."""
    if isinstance(error, ModelNotFoundError):
        return "model_not_found"
    if isinstance(error, ModelLoadError):
        return "model_unusable"
    return None


async def adam_error(request: Request, error: Exception) -> Response:
    """The answer to an ``AdamError`` raised by a route."""
    if not isinstance(error, AdamError):
        return await internal_error(request, error)
    status = status_of(error)
    if status == 500:
        logger.error("request failed: %s", error)
    return error_response(request.url.path, status, str(error), param=error.param,
                          code=code_of(error))


async def http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals: 404 no such route, 405 (``Allow`` kept), 413."""
    if not isinstance(error, HTTPException):
        return await internal_error(request, error)
    message = error.detail
    if error.status_code == 404:
        message = f"no route {request.url.path}; see /openapi.json for the routes"
    elif error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
    headers = dict(error.headers or {})
    if error.status_code in (408, 413):  # the body was not read to its end: start afresh
        headers["Connection"] = "close"
    return error_response(request.url.path, error.status_code, message,
                          headers=headers or None)


CLIENT_GONE = 499
"""The status a request is counted with when its client went away before the answer (as
nginx logs it); nobody receives it."""


async def client_gone(request: Request, error: Exception) -> Response:
    """The client disconnected while its request was read: nothing to answer, nothing
    failed here (counted with status 499 by the metrics, not logged as an error)."""
    return Response(status_code=CLIENT_GONE)


async def internal_error(request: Request, error: Exception) -> Response:
    """A bug: logged with its traceback, answered with a 500 that names it. A full disk
    met anywhere is no bug: 507, saying so."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return error_response(request.url.path, 507, f"no space left on this server's disk "
                              f"({error.strerror}); free some space and try again")
    logger.exception("request failed")
    return error_response(request.url.path, 500,
                          f"internal error ({type(error).__name__}); the server's log has "
                          "the details")
