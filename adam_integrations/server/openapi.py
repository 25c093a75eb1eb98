"""``GET /openapi.json``: an OpenAPI 3.1 description of every route ``adam serve`` answers,
the Ollama ones and the OpenAI-compatible ones, request bodies included.

It describes what the handlers accept (``wire.ollama`` and ``wire.openai`` read the
bodies; this is their documentation, kept next to the route list and checked against it
by the tests: every route described, every described route served, and schemathesis
fuzzing a live server from it). Bodies allow more fields than are listed, as Ollama
ignores fields it does not know; every error answer is ``{"error": "..."}``.

Example:
    >>> sorted(openapi_document(["/api/chat"])["paths"])
    ['/api/chat']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adam_integrations.core import __version__

_MODEL = {"type": "string", "description": "a model name (see /api/tags)",
          "examples": ["smollm2:135m"]}
_EMBEDDER = {**_MODEL, "examples": ["all-minilm:l6-v2"]}
_STREAM = {"type": "boolean", "description": "stream the answer (default true)"}
_KEEP_ALIVE = {"oneOf": [{"type": "string", "examples": ["5m"]}, {"type": "number"}],
               "description": "how long the model stays loaded after the request"}
_THINK = {"oneOf": [{"type": "boolean"}, {"enum": ["low", "medium", "high"]}]}
_FORMAT = {"oneOf": [{"const": "json"}, {"type": "object"}],
           "description": "\"json\", or a JSON schema the answer must follow"}
_OPTIONS = {"type": "object", "description": "sampling options (others are ignored)",
            "properties": {
                "num_predict": {"type": "integer"}, "temperature": {"type": "number"},
                "top_p": {"type": "number"}, "top_k": {"type": "integer"},
                "min_p": {"type": "number"}, "seed": {"type": "integer"},
                "stop": {"oneOf": [{"type": "string"},
                                   {"type": "array", "items": {"type": "string"}}]},
                "repeat_penalty": {"type": "number"}, "presence_penalty": {"type": "number"},
                "frequency_penalty": {"type": "number"}, "num_ctx": {"type": "integer"}}}
_TOOL = {"type": "object", "required": ["type", "function"], "properties": {
    "type": {"const": "function"},
    "function": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "description": {"type": "string"},
        "parameters": {"type": "object"}}}}}
_TOOLS = {"type": "array", "items": {"$ref": "#/components/schemas/Tool"}}
_ROLE = {"enum": ["system", "user", "assistant", "tool"]}
_OLLAMA_MESSAGE = {"type": "object", "required": ["role"], "properties": {
    "role": _ROLE, "content": {"type": "string"}, "thinking": {"type": "string"},
    "tool_name": {"type": "string"},
    "tool_calls": {"type": "array", "items": {"type": "object", "properties": {
        "function": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "arguments": {"type": "object"}}}}}}}}
_OPENAI_MESSAGE = {"type": "object", "required": ["role"], "properties": {
    "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
    "content": {"oneOf": [{"type": "string"}, {"type": "null"}, {
        "type": "array", "items": {"type": "object", "required": ["type", "text"],
                                   "properties": {"type": {"const": "text"},
                                                  "text": {"type": "string"}}}}]},
    "name": {"type": "string"}, "tool_call_id": {"type": "string"},
    "reasoning_content": {"type": "string"},
    "tool_calls": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "type": {"const": "function"},
        "function": {"type": "object", "required": ["name", "arguments"], "properties": {
            "name": {"type": "string"}, "arguments": {"type": "string"}}}}}}}}

_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string"}}},
    "Tool": _TOOL,
    "OllamaMessage": _OLLAMA_MESSAGE,
    "OpenAIMessage": _OPENAI_MESSAGE,
}


def _body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": required, "properties": properties}}}}


def _operation(summary: str, body: dict[str, Any] | None = None,
               media: str = "application/json") -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref":
                                                         "#/components/schemas/Error"}}}}
    responses: dict[str, Any] = {"200": {"description": "the answer",
                                         "content": {media: {}}}}
    for status, why in (("400", "a bad request (name, option, message, prompt length)"),
                        ("401", "no or wrong API key"), ("403", "Host or Origin refused"),
                        ("404", "no such model"), ("405", "wrong method"),
                        ("413", "body too large"),
                        ("503", "busy, shutting down, or past the time limit")):
        responses[status] = {"description": why, **error}
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = body
    return operation


_CHAT = _body(["model"], {
    "model": _MODEL, "messages": {"type": "array",
                                  "items": {"$ref": "#/components/schemas/OllamaMessage"}},
    "stream": _STREAM, "format": _FORMAT, "options": _OPTIONS, "think": _THINK,
    "tools": _TOOLS, "keep_alive": _KEEP_ALIVE})
_GENERATE = _body(["model"], {
    "model": _MODEL, "prompt": {"type": "string"}, "system": {"type": "string"},
    "raw": {"type": "boolean"}, "stream": _STREAM, "format": _FORMAT, "options": _OPTIONS,
    "think": _THINK, "keep_alive": _KEEP_ALIVE})
_TEXTS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
_OPENAI_CHAT = _body(["model", "messages"], {
    "model": _MODEL,
    "messages": {"type": "array", "minItems": 1,
                 "items": {"$ref": "#/components/schemas/OpenAIMessage"}},
    "stream": {"type": "boolean"},
    "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
    "max_tokens": {"type": "integer"}, "max_completion_tokens": {"type": "integer"},
    "temperature": {"type": "number"}, "top_p": {"type": "number"},
    "seed": {"type": "integer"}, "presence_penalty": {"type": "number"},
    "frequency_penalty": {"type": "number"},
    "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    "tools": _TOOLS,
    "tool_choice": {"oneOf": [{"enum": ["auto", "none", "required"]}, {
        "type": "object", "properties": {"type": {"const": "function"}, "function": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}}}}}]},
    "response_format": {"type": "object", "required": ["type"], "properties": {
        "type": {"enum": ["text", "json_object", "json_schema"]},
        "json_schema": {"type": "object", "properties": {
            "name": {"type": "string"}, "schema": {"type": "object"},
            "strict": {"type": "boolean"}}}}},
    "reasoning_effort": {"enum": ["none", "low", "medium", "high"]}})

OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/": {"get": _operation("liveness: 'Ollama is running'", media="text/plain")},
    "/api/version": {"get": _operation("the Ollama API version")},
    "/api/tags": {"get": _operation("the models on disk")},
    "/api/ps": {"get": _operation("the models in memory")},
    "/api/show": {"post": _operation("a model's details, template and capabilities",
                                     _body(["model"], {"model": _MODEL}))},
    "/api/chat": {"post": _operation("a chat answer (NDJSON stream unless stream=false)",
                                     _CHAT, "application/x-ndjson")},
    "/api/generate": {"post": _operation("a completion (NDJSON stream unless stream=false)",
                                         _GENERATE, "application/x-ndjson")},
    "/api/embed": {"post": _operation("embeddings, L2-normalised", _body(["model"], {
        "model": _EMBEDDER, "input": _TEXTS, "keep_alive": _KEEP_ALIVE,
        "truncate": {"type": "boolean"}}))},
    "/api/embeddings": {"post": _operation("one embedding (the older route)", _body(
        ["model"], {"model": _EMBEDDER, "prompt": {"type": "string"},
                    "keep_alive": _KEEP_ALIVE}))},
    "/api/pull": {"post": _operation("make a model ready (download what is missing)",
                                     _body(["model"], {"model": _MODEL, "stream": _STREAM,
                                                       "insecure": {"type": "boolean"}}),
                                     "application/x-ndjson")},
    "/api/copy": {"post": _operation("another name for a model", _body(
        ["source", "destination"], {"source": _MODEL, "destination": {
            "type": "string", "examples": ["my-model:latest"]}}))},
    "/api/delete": {"delete": _operation("remove a name made with /api/copy", _body(
        ["model"], {"model": {"type": "string", "examples": ["my-model:latest"]}}))},
    "/v1/chat/completions": {"post": _operation(
        "an OpenAI chat completion (SSE stream when stream=true)", _OPENAI_CHAT)},
    "/v1/completions": {"post": _operation(
        "an OpenAI text completion of a raw prompt (SSE stream when stream=true)",
        _body(["model", "prompt"], {
            "model": _MODEL, "prompt": {"type": "string", "minLength": 1},
            "stream": {"type": "boolean"}, "max_tokens": {"type": "integer"},
            "temperature": {"type": "number"}, "top_p": {"type": "number"},
            "seed": {"type": "integer"}, "stop": {"oneOf": [
                {"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}))},
    "/v1/embeddings": {"post": _operation("OpenAI embeddings", _body(["model", "input"], {
        "model": _EMBEDDER, "input": _TEXTS, "encoding_format": {"const": "float"}}))},
    "/v1/models": {"get": _operation("the models, as OpenAI lists them")},
    "/metrics": {"get": _operation("Prometheus metrics", media="text/plain")},
    "/openapi.json": {"get": _operation("this document")},
}


def openapi_document(paths: Iterable[str]) -> dict[str, Any]:
    """The OpenAPI document for the routes at ``paths`` (KeyError for one undescribed)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "adam serve", "version": __version__,
                 "description": "The Ollama REST API and OpenAI-compatible routes over "
                                "adam-integrations' models."},
        "paths": {path: OPERATIONS[path] for path in paths},
        "components": {"schemas": _SCHEMAS, "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer",
                       "description": "only when adam serve was started with an API key"}}},
    }
