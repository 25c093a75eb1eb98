"""The wire formats ``adam serve`` speaks, in one list: for each, the paths that speak it,
the shape of its errors (and that shape's schema in ``/openapi.json``), and the module of
its routes and of their part of ``/openapi.json``. A request's path picks its dialect
(``dialect_of``), so an error met anywhere (a route, the guard, the limits, a malformed
request on the connection) answers in the shape the client reads.

Adding a wire format: a module in ``wire/`` (parsing and answers, both directions), a
``server/<name>_api.py`` with ``routes(service)`` and ``OPERATIONS``, and an entry here.

Example:
    >>> dialect_of("/v1/messages").name, dialect_of("/v1/chat/completions").name
    ('anthropic', 'openai')
    >>> dialect_of("/api/chat").error_object(404, "no model", None, None)
    {'error': 'no model'}
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adam_integrations.wire import anthropic as anthropic_wire
from adam_integrations.wire import ollama as ollama_wire
from adam_integrations.wire import openai as openai_wire

TOKENIZER_ROUTES = ("/tokenize", "/detokenize", "/tokenizer_info")
"""vLLM's tokenizer endpoints, outside ``/v1`` but answering as its ``/v1`` does."""
RERANK_ROUTES = ("/rerank", "/v2/rerank")
"""The reranking routes outside ``/v1`` (vLLM's, Jina's and Cohere's), answering as ``/v1``
does."""

ErrorObject = Callable[[int, str, "str | None", "str | None"], dict[str, Any]]


@dataclass(frozen=True)
class Dialect:
    """One wire format of ``adam serve``.

    Attributes:
        name: what it is called.
        paths: the paths that speak it: each, and every path below it ("" is every path).
        error_object: its error body, from the status, message, ``param`` and ``code``.
        error_schema: the JSON schema of that body (``/openapi.json``'s component
            ``<Name>Error``).
        api: the module whose ``routes(service)`` serves it and whose ``OPERATIONS``
            describe those routes.
    """

    name: str
    paths: tuple[str, ...]
    error_object: ErrorObject
    error_schema: dict[str, Any]
    api: str

    @property
    def error_schema_name(self) -> str:
        return {"openai": "OpenAI"}.get(self.name, self.name.capitalize()) + "Error"

    def speaks(self, path: str) -> bool:
        return any(path == prefix or path.startswith(f"{prefix}/") or not prefix
                   for prefix in self.paths)

    def routes(self, service: Any) -> list[Any]:
        """Its routes over the server's ``ModelService``."""
        return importlib.import_module(self.api).routes(service)

    def operations(self) -> dict[str, Any]:
        """Its routes as ``/openapi.json`` describes them (the module's ``OPERATIONS``)."""
        return importlib.import_module(self.api).OPERATIONS


DIALECTS: tuple[Dialect, ...] = (
    Dialect("anthropic", ("/v1/messages",),
            lambda status, message, param, code: anthropic_wire.error_object(status,
                                                                             message),
            anthropic_wire.ERROR_SCHEMA, "adam_integrations.server.anthropic_api"),
    Dialect("openai", ("/v1", *TOKENIZER_ROUTES, *RERANK_ROUTES),
            lambda status, message, param, code: openai_wire.error_object(
                status, message, param=param, code=code),
            openai_wire.ERROR_SCHEMA, "adam_integrations.server.openai_api"),
    Dialect("ollama", ("",),
            lambda status, message, param, code: ollama_wire.error_object(message),
            ollama_wire.ERROR_SCHEMA, "adam_integrations.server.ollama_api"),
)
"""Every dialect, the most specific paths first (the first that speaks a path wins)."""


def dialect_of(path: str) -> Dialect:
    """The dialect ``path`` speaks."""
    return next(dialect for dialect in DIALECTS if dialect.speaks(path))
