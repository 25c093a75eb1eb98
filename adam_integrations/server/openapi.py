"""``GET /openapi.json``: an OpenAPI 3.1 description of every route ``adam serve`` answers,
the Ollama ones and the OpenAI-compatible ones: request bodies, the non-streamed answers
and every status each route can return, with its error body.

Each dialect describes its own routes (``OPERATIONS`` in its ``server/<name>_api.py``,
found through ``server.dialects``) with the helpers here (``operation``,
``request_body``, ``streamed``...); this module joins them (``operations``) with the
shared components and the server's own routes.

The request fields are not written here: they are the tables the parsers check requests
against (``wire.ollama.CHAT_FIELDS``, ``wire.openai.CHAT_FIELDS``, ..., through
``wire.fields``), and ``model`` is ``server.names``' own pattern; and every JSON body is
held to the whole schema described here before its route reads it (``RequestSchemas``,
nested fields included), so the description says exactly what the server accepts.
Bodies allow more fields than are listed, as Ollama ignores fields it does not know.
The tests check it against the route list (every route described, every described route
served) and fuzz a live server from it with every check schemathesis has.

Example:
    >>> sorted(openapi_document(["/api/chat"])["paths"])
    ['/api/chat']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from adam_integrations.core import __version__
from adam_integrations.core.tools import TOOL_NAME_PATTERN
from adam_integrations.core.types import ROLE_ALIASES, ROLES
from adam_integrations.server.dialects import DIALECTS, TOKENIZER_ROUTES, dialect_of
from adam_integrations.server.limits import MODEL_ROUTES
from adam_integrations.server.names import (
    MAX_NAME_LENGTH,
    NAME_PATTERN,
    PATH_PATTERN,
)
from adam_integrations.wire.fields import BodySchema

MODEL = {"type": "string", "pattern": NAME_PATTERN, "maxLength": MAX_NAME_LENGTH,
          "description": "a model name (see /api/tags): model[:tag], namespace/model:tag, "
                         "hf:<org>/<repo>[:<quant>] or ollama:<name>; no '..' anywhere. "
                         "Paths too, when the server was started with --models-dir",
          "examples": ["smollm2:135m"]}
EMBEDDER = {**MODEL, "examples": ["all-minilm:l6-v2"]}
ARRAY_OF_NUMBERS = {"type": "array", "items": {"type": "number"}}
COUNTS = {key: {"type": "integer"} for key in (
    "total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
    "eval_count", "eval_duration")}
_OLLAMA_ANSWER = {"model": {"type": "string"}, "created_at": {"type": "string"},
                  "done": {"type": "boolean"}, "done_reason": {"type": "string"}, **COUNTS}
USAGE = {"type": "object", "properties": {key: {"type": "integer"} for key in (
    "prompt_tokens", "completion_tokens", "total_tokens")}}

def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _completion(kind: str, choice: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI completion (or one streamed chunk of one) whose choices hold ``choice``."""
    return {"type": "object", "required": ["id", "object", "choices"], "properties": {
        "id": {"type": "string"}, "object": {"const": kind}, "created": {"type": "integer"},
        "model": {"type": "string"}, "usage": USAGE, "choices": {"type": "array", "items": {
            "type": "object", "properties": {"index": {"type": "integer"}, **choice}}}}}


_ROLES = [*ROLES, *ROLE_ALIASES]  # the names ChatMessage.coerce reads roles by
_SCHEMAS: dict[str, Any] = {
    **{dialect.error_schema_name: dialect.error_schema for dialect in DIALECTS},
    "ToolName": {"type": "string", "pattern": TOOL_NAME_PATTERN,
                 "description": "1-64 letters, digits, '_', '.' or '-'"},
    "ToolParameters": {
        "type": "object", "required": ["type"], "description": "a JSON schema of type "
        "object: the tool's arguments", "properties": {
            "type": {"const": "object"}, "description": {"type": "string"},
            "properties": {"type": "object", "additionalProperties": {"type": "object"}},
            "required": {"type": "array", "items": {"type": "string"}}}},
    "Tool": {"type": "object", "required": ["type", "function"], "properties": {
        "type": {"const": "function"},
        "function": {"type": "object", "required": ["name"], "properties": {
            "name": ref("ToolName"), "description": {"type": "string"},
            "parameters": ref("ToolParameters")}}}},
    "OllamaMessage": {"type": "object", "required": ["role"], "properties": {
        "role": {"enum": _ROLES}, "content": {"type": "string"},
        "thinking": {"type": "string"}, "tool_name": {"type": "string"},
        "images": {"type": "array", "maxItems": 0,
                   "description": "no vision model is served"},
        "tool_calls": {"type": "array", "items": {
            "type": "object", "required": ["function"], "properties": {
                "function": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "arguments": {"type": ["string", "object", "null"]}}}}}}},
        "additionalProperties": {"type": "null"}},
    "OpenAIMessage": {"type": "object", "required": ["role"], "properties": {
        "role": {"enum": _ROLES},
        "content": {"oneOf": [{"type": "string"}, {"type": "null"}, {
            "type": "array", "items": {"oneOf": [{"type": "string"}, {
                "type": "object", "required": ["text"], "properties": {
                    "type": {"const": "text"}, "text": {"type": "string"}}}]}}]},
        "name": {"type": "string"}, "tool_call_id": {"type": "string"},
        **{key: {"type": "string"} for key in ("reasoning_content", "reasoning",
                                                "thinking", "tool_name")},
        "tool_calls": {"type": "array", "items": {
            "type": "object", "required": ["function"], "properties": {
                "id": {"type": "string"}, "type": {"const": "function"},
                "function": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "arguments": {"type": ["string", "object", "null"], "description":
                                  "a JSON object, or its text"}}}}}}},
        "additionalProperties": {"type": "null"}},
    "ChatResponse": {"type": "object", "required": ["model", "message", "done"],
                     "properties": {**_OLLAMA_ANSWER, "message": {
                         "$ref": "#/components/schemas/OllamaMessage"}}},
    "GenerateResponse": {"type": "object", "required": ["model", "response", "done"],
                         "properties": {**_OLLAMA_ANSWER, "response": {"type": "string"},
                                        "thinking": {"type": "string"}}},
    "ChatCompletion": _completion("chat.completion", {
        "message": ref("OpenAIMessage"), "finish_reason": {"type": "string"}}),
    "ChatCompletionChunk": _completion("chat.completion.chunk", {
        "delta": {"type": "object"}, "finish_reason": {"type": ["string", "null"]}}),
    "TextCompletion": _completion("text_completion", {
        "text": {"type": "string"}, "finish_reason": {"type": "string"}}),
    "TextCompletionChunk": _completion("text_completion", {
        "text": {"type": "string"}, "finish_reason": {"type": ["string", "null"]}}),
}

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


def request_body(required: list[str], fields: Mapping[str, Any],
                 model: Mapping[str, Any] = MODEL) -> dict[str, Any]:
    """A JSON body with ``fields``, the ``required`` ones present and not null; the others
    may be null, which the server reads as absent (as OpenAI's and Ollama's servers do:
    clients send ``"user": null``)."""
    properties = {"model": dict(model), **fields} if "model" in required else dict(fields)
    properties = {name: _nulls_absent(schema) if name in required else
                  nullable(_nulls_absent(schema)) for name, schema in properties.items()}
    return {"required": True, "content": json_content({
        "type": "object", "required": required, "properties": properties})}


def closed(body: dict[str, Any]) -> dict[str, Any]:
    """A body that takes its listed fields only (vLLM's tokenizer routes refuse others)."""
    body["content"]["application/json"]["schema"]["additionalProperties"] = False
    return body


def _nulls_absent(schema: Any) -> Any:
    """``schema`` with every optional field of every object in it nullable: the parsers
    read a null as the field left out (the ``openai`` SDK dumps unset fields as null).
    Referenced schemas are made so where they are defined; a JSON schema carried as a
    value (a tool's parameters) is not touched."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return schema
    out = dict(schema)
    if isinstance(schema.get("properties"), dict):
        required = set(schema.get("required", ()))
        out["properties"] = {name: _nulls_absent(item) if name in required
                             else nullable(_nulls_absent(item))
                             for name, item in schema["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            out[key] = _nulls_absent(schema[key])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            out[key] = [_nulls_absent(branch) for branch in schema[key]]
    return out


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema``, or null."""
    return {"anyOf": [dict(schema), {"type": "null"}]}


for _name in ("Tool", "OllamaMessage", "OpenAIMessage"):  # read by the same parsers
    _SCHEMAS[_name] = _nulls_absent(_SCHEMAS[_name])


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
        "components": {"schemas": _SCHEMAS, "securitySchemes": {
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
