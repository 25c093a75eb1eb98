"""``GET /openapi.json``: an OpenAPI 3.1 description of every route ``adam serve`` answers,
the Ollama ones and the OpenAI-compatible ones: request bodies, the non-streamed answers
and every status each route can return, with its error body.

Each dialect describes its own routes (``OPERATIONS`` in its ``server/<name>_api.py``,
found through ``server.dialects``) with the helpers here (``operation``,
``request_body``, ``streamed``...); this module joins them (``operations``) with the
shared components and the server's own routes.

The request bodies are not written here: each is the JSON schema of the pydantic model
its route reads (``wire.ollama.ChatRequest``, ``wire.openai.ChatCompletionRequest``, ...,
``wire.request``), with ``model`` held to ``server.names``' own pattern; and every JSON
body is held to the whole schema described here before its route reads it
(``RequestSchemas``, nested fields included), so the description says exactly what the
server accepts. Bodies allow more fields than are listed, as Ollama ignores fields it
does not know.
The tests check it against the route list (every route described, every described route
served) and fuzz a live server from it with every check schemathesis has.

Example:
    >>> sorted(openapi_document(["/api/chat"])["paths"])
    ['/api/chat']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from adam_integrations.core import __version__
from adam_integrations.server.dialects import DIALECTS, TOKENIZER_ROUTES, dialect_of
from adam_integrations.server.limits import MODEL_ROUTES
from adam_integrations.server.names import (
    MAX_NAME_LENGTH,
    NAME_PATTERN,
    PATH_PATTERN,
)
from adam_integrations.wire.request import BodySchema, WireRequest, request_schemas

MODEL = {"type": "string", "pattern": NAME_PATTERN, "maxLength": MAX_NAME_LENGTH,
          "description": "a model name (see /api/tags): model[:tag], namespace/model:tag, "
                         "hf:<org>/<repo>[:<quant>] or ollama:<name>; no '..' anywhere. "
                         "Paths too, when the server was started with --models-dir",
          "examples": ["smollm2:135m"]}
EMBEDDER = {**MODEL, "examples": ["all-minilm:l6-v2"]}
ARRAY_OF_NUMBERS = {"type": "array", "items": {"type": "number"}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_SDK_ANSWERS: dict[str, type[BaseModel]] = {}
"""The SDK types answers are described by (``answer``), by component name."""


def answer(sdk_type: type[BaseModel], *always: str) -> dict[str, Any]:
    """An answer described by the client SDK's own type (``ollama.ChatResponse``,
    ``openai.types.chat.ChatCompletion``...): what its client reads the answer into, as
    the SDK's JSON schema (component ``<package>.<Type>``), with the fields this server
    always sends (``always``) required too."""
    name = f"{sdk_type.__module__.split('.')[0]}.{sdk_type.__name__}"
    _SDK_ANSWERS[name] = sdk_type
    return {"allOf": [ref(name), {"required": list(always)}]} if always else ref(name)


@cache
def _sdk_components() -> dict[str, Any]:
    """The SDK types' schemas, one namespace per package (``openai.ChatCompletion``,
    ``openai.Choice``...; a name two of its types use is qualified by pydantic)."""
    by_package: dict[str, dict[str, type[BaseModel]]] = {}
    for name, sdk_type in _SDK_ANSWERS.items():
        by_package.setdefault(name.split(".")[0], {})[name] = sdk_type
    components: dict[str, Any] = {}
    for package, named in by_package.items():
        keys, shared = models_json_schema(
            [(sdk_type, "validation") for sdk_type in named.values()],
            ref_template=f"#/components/schemas/{package}.{{model}}")
        components.update((f"{package}.{key}", schema)
                          for key, schema in shared.get("$defs", {}).items())
        for name, sdk_type in named.items():  # each type under its own name too
            components.setdefault(name, keys[(sdk_type, "validation")])
    return components


_TEXT_COMPLETION = {
    "type": "object", "required": ["id", "object", "created", "model", "choices"],
    "description": "a /v1/completions answer, or one streamed chunk of it: as "
                   "openai.Completion, but finish_reason is null until the last chunk, and "
                   "with echo and logprobs the prompt's first token has a null logprob "
                   "(both as OpenAI's API and vLLM send them; the SDK's type allows "
                   "neither)",
    "properties": {
        "id": {"type": "string"}, "object": {"const": "text_completion"},
        "created": {"type": "integer"}, "model": {"type": "string"},
        "usage": {"anyOf": [ref("openai.CompletionUsage"), {"type": "null"}]},
        "choices": {"type": "array", "items": {
            "type": "object", "required": ["index", "text", "finish_reason"], "properties": {
                "index": {"type": "integer"}, "text": {"type": "string"},
                "finish_reason": {"enum": ["stop", "length", None]},
                "logprobs": {"type": ["object", "null"], "properties": {
                    "tokens": {"type": "array", "items": {"type": "string"}},
                    "token_logprobs": {"type": "array",
                                       "items": {"type": ["number", "null"]}},
                    "top_logprobs": {"type": "array", "items": {"type": ["object", "null"]}},
                    "text_offset": {"type": "array", "items": {"type": "integer"}}}}}}}}}
_SCHEMAS: dict[str, Any] = {
    **{dialect.error_schema_name: dialect.error_schema for dialect in DIALECTS},
    "TextCompletion": _TEXT_COMPLETION,
}
"""The components not made from a model: each dialect's error object, and the one answer
no SDK type describes."""

WHY = {
    "400": "a bad request: a field, option, message, name, or a prompt over the limit",
    "401": "no or wrong API key (only when the server has keys)",
    "403": "the Host or Origin is refused",
    "404": "no such model",
    "405": "a method this route does not take (the Allow header lists the ones it does)",
    "413": "the body is larger than --max-body-mb",
    "422": "the model exists but cannot be used (a corrupt or unsupported file)",
    "503": "busy, shutting down, or past the time limit (Retry-After says when to retry)",
}


def json_content(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": dict(schema)}}


_REQUEST_PARTS: dict[str, Any] = {}
"""The objects request bodies share (a message, a tool), as components: made from the
wire modules' request models by ``request_body``."""


def request_body(request: type[WireRequest], model: Mapping[str, Any] = MODEL,
                 **names: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body ``request`` reads (its schema made from the pydantic model), its
    ``model`` field (and the fields in ``names``) held to this server's model names."""
    bodies, parts = request_schemas([request])
    for name, part in parts.items():
        if _REQUEST_PARTS.setdefault(name, part) != part:
            raise ValueError(f"two request parts are named {name}: rename one")
    schema = bodies[request]
    for field, named in {"model": model, **names}.items():
        if field in schema["properties"]:
            required = field in schema.get("required", ())
            schema["properties"][field] = dict(named) if required else nullable(named)
    return {"required": True, "content": json_content(schema)}


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema``, or null."""
    return {"anyOf": [dict(schema), {"type": "null"}]}


_NAMES_A_MODEL = frozenset({*MODEL_ROUTES, "/api/show", "/api/copy", "/api/delete",
                            "/api/create", "/v1/models/{model}", "/v1/messages/count_tokens",
                            *TOKENIZER_ROUTES})
_LOADS_A_MODEL = frozenset({*MODEL_ROUTES, "/api/show", *TOKENIZER_ROUTES})


def operation(path: str, summary: str, answer: dict[str, Any],
              body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One operation: its answer (200), and the error statuses this route can return."""
    statuses = ["401", "403", "405"]
    if body is not None:
        statuses += ["400", "413"]
    if path in _NAMES_A_MODEL:
        statuses.append("404")
    if path in _LOADS_A_MODEL:
        statuses.append("422")
    if path in MODEL_ROUTES:
        statuses.append("503")
    error = json_content(ref(dialect_of(path).error_schema_name))
    responses: dict[str, Any] = {"200": {"description": "the answer", **answer}}
    for status in sorted(statuses):
        responses[status] = {"description": WHY[status], "content": error}
    described: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        described["requestBody"] = body
    return described


def streamed(whole: Mapping[str, Any], stream_media: str,
             chunk: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An answer that is one JSON object when not streamed, else a stream: NDJSON lines
    like ``whole``, or server-sent events whose ``data`` is a ``chunk`` as JSON (or
    ``[DONE]``; an error event carries the error object)."""
    if stream_media == "text/event-stream":
        described = {"oneOf": [dict(chunk or whole), ref("OpenAIError")]}
        stream = {"type": "object", "required": ["data"], "properties": {"data": {
            "oneOf": [{"const": "[DONE]"}, {"type": "string", "pattern": "^\\{",
                                            "contentMediaType": "application/json",
                                            "contentSchema": described}],
            "description": "one chunk as JSON, an error object, or [DONE] at the end"}}}
    else:
        stream = {"oneOf": [dict(whole), ref("OllamaError")]}
    return {"content": {**json_content(whole), stream_media: {"schema": stream}}}


OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/metrics": {"get": operation("/metrics", "Prometheus metrics", {
        "content": {"text/plain": {"schema": {"type": "string"}}}})},
    "/openapi.json": {"get": operation("/openapi.json", "this document", {
        "content": json_content({"type": "object"})})},
}
"""The routes of the server itself, in no dialect: ``/metrics`` and this document."""


def operations() -> dict[str, dict[str, dict[str, Any]]]:
    """Every route's description: each dialect's own part (its route module's
    ``OPERATIONS``, ``server.dialects``) and the server's."""
    described: dict[str, dict[str, dict[str, Any]]] = {}
    for dialect in reversed(DIALECTS):
        described.update(dialect.operations())
    return {**described, **OPERATIONS}


class RequestSchemas:
    """The JSON bodies a served document describes, to hold requests to (one
    ``BodySchema`` per route, made on first use)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._paths = document["paths"]
        self._components = document["components"]["schemas"]
        self._made: dict[tuple[str, str], BodySchema | None] = {}

    def of(self, path: str, method: str) -> BodySchema | None:
        """The body of ``method path`` (None for a route without a JSON body)."""
        key = (_templated(path), method.lower())
        if key not in self._made:
            operation = self._paths.get(key[0], {}).get(key[1], {})
            content = operation.get("requestBody", {}).get("content", {})
            self._made[key] = (BodySchema(content["application/json"]["schema"],
                                          self._components)
                               if "application/json" in content else None)
        return self._made[key]


def openapi_document(paths: Iterable[str], *, secured: bool = False,
                     model_paths: bool = False) -> dict[str, Any]:
    """The OpenAPI document for the routes at ``paths`` (KeyError for one undescribed);
    ``secured``: the server has API keys, so every operation but ``GET /`` needs one;
    ``model_paths``: it serves model files by path (``--models-dir``), so ``model`` may
    be one."""
    every = operations()
    described = {_templated(path): every[_templated(path)] for path in paths}
    if model_paths:
        described = _with_paths(described)
    if secured:
        described = {path: {method: {**operation, "security": [{"apiKey": []}]}
                            if path != "/" else operation
                            for method, operation in methods.items()}
                     for path, methods in described.items()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "adam serve", "version": __version__,
                 "description": "The Ollama REST API and OpenAI-compatible routes over "
                                "adam-integrations' models. Errors: OpenAI's error object "
                                "on /v1, Ollama's {\"error\": ...} elsewhere."},
        "paths": described,
        "components": {"schemas": {**_REQUEST_PARTS, **_sdk_components(), **_SCHEMAS},
                       "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer",
                       "description": "Authorization: Bearer <key> (the anthropic SDK's "
                                      "x-api-key too), when adam serve has API keys"}}},
    }


def _with_paths(value: Any) -> Any:
    """``value`` with every model-name schema taking a path too."""
    if isinstance(value, dict):
        if value.get("pattern") == NAME_PATTERN:
            return {**value, "pattern": f"{NAME_PATTERN}|{PATH_PATTERN}"}
        return {key: _with_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_paths(item) for item in value]
    return value


def _templated(path: str) -> str:
    """A route's path as OpenAPI writes it: ``{model:path}`` (Starlette's converter) is
    ``{model}``."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)
