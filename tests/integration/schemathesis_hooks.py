"""schemathesis hooks for fuzzing ``adam serve``: the rules of its requests that JSON Schema
cannot say, applied to the requests schemathesis generates as *valid*, so that its
``positive_data_acceptance`` check (a valid request must not be refused) tests what the
description can promise. Loaded with ``SCHEMATHESIS_HOOKS=tests.integration.schemathesis_hooks``
(``tests/integration/test_server_fuzz.py``). Invalid requests are left as generated.

Each rule below is one the server states in its error message, and the tests of the
routes check it directly:

- text is valid Unicode: no lone UTF-16 surrogates, which JSON can carry escaped;
- a route that finds its model alone needs it named when the server serves several
  (``/tokenize``, ``/detokenize``, ``/tokenizer_info``);
- a blob's body must hash to the digest in its path (``POST /api/blobs/{digest}``);
- a token-id prompt must be how the model reads its text (``/v1/completions``), and ids
  to spell out must be in its vocabulary (``/detokenize``);
- a named ``tool_choice`` must name one of the request's tools, tool names are unique,
  and a forced call or an answer's format must fit in the answer's tokens (the fuzzed
  server runs with ``--max-tokens 4``: no forced call, and any object as the format);
- an empty text is embedded only by a model that adds tokens of its own (the chat model
  refuses it, naming it);
- a per-request ``lora`` entry names one of the model's adapters, and the fuzzed server
  loads none (``lora adapter 1 does not exist: this model has no adapters``): only ``[]``;
- ``dimensions`` at most the served embedding model's, and an embedding model asked to
  generate or to rerank is refused (``... is an embedding model and cannot generate
  text``);
- a JSON schema given as an answer's format or a tool's parameters must be a valid
  JSON schema (its own metaschema), and a tool call's arguments text must be JSON;
- what the served model cannot do is refused in Ollama's words: thinking
  (``think``, ``reasoning_effort``, Anthropic's ``thinking``), a ``suffix`` without
  fill-in-the-middle tokens, requantizing a quantized model, a chat template that does
  not compile; and ``echo`` takes no ``suffix``, ``top_logprobs`` needs ``logprobs``.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import jsonschema
import schemathesis
from schemathesis import GenerationMode

PLAIN_TEXT_PROMPT = "Say hi."
CHAT_MODEL = "smollm2:135m"
VOCABULARY = 49152  # the served model's token ids are below this
DIMENSIONS = 384  # the served embedding model's vectors
EMBED_MODEL = "all-minilm:l6-v2"
GENERATING = frozenset({"/api/chat", "/api/generate", "/v1/chat/completions",
                        "/v1/completions", "/v1/responses", "/v1/messages",
                        "/v1/messages/count_tokens", "/tokenize", "/detokenize",
                        "/v1/rerank", "/rerank", "/v2/rerank", "/api/rerank"})


@schemathesis.check
def errors_come_in_the_routes_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx answer is Anthropic's error object on ``/v1/messages``, OpenAI's on the rest
    of ``/v1`` (and vLLM's tokenizer and rerank routes outside it), Ollama's
    ``{"error": "<what went wrong>"}``
    elsewhere. Each answer is also counted, by route and status, into the file
    ``ADAM_FUZZ_COUNTS`` names (the test's report)."""
    counts = os.environ.get("ADAM_FUZZ_COUNTS")
    if counts:
        with open(counts, "a", encoding="utf-8") as out:
            out.write(f"{case.method.upper()} {case.path} {response.status_code}\n")
    if response.status_code < 400 or case.method.upper() == "HEAD":  # HEAD has no body
        return None
    body = json.loads(response.content)
    path = case.formatted_path
    if path.startswith("/v1/messages"):
        message = body["error"]["message"] if body.get("type") == "error" else None
    elif path.startswith("/v1/") or path in ("/tokenize", "/detokenize", "/tokenizer_info",
                                             "/rerank", "/v2/rerank"):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) and set(error) == {
            "message", "type", "param", "code"} else None
    else:
        message = body.get("error") if set(body) == {"error"} else None
    if not (isinstance(message, str) and message):
        raise AssertionError(f"error body not in the route's shape: {response.content!r}")
    return None


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return case
    path = case.path
    if path == "/api/blobs/{digest}" and case.method.upper() == "POST":
        body = case.body if isinstance(case.body, bytes) else str(case.body).encode()
        case.body = body
        case.path_parameters["digest"] = f"sha256:{hashlib.sha256(body).hexdigest()}"
        return case
    if isinstance(case.body, dict):
        case.body = _valid_unicode(case.body)
        _coherent(path, case.body)
    if path == "/tokenizer_info":
        case.query = {**(case.query or {}), "model": CHAT_MODEL}
    return case


@schemathesis.hook
def before_add_examples(context: Any, examples: list[Any]) -> None:
    """The examples phase's cases (all meant valid) get the same rules."""
    for case in examples:
        if isinstance(case.body, dict):
            case.body = _valid_unicode(case.body)
            _coherent(case.path, case.body)


def _valid_unicode(value: Any) -> Any:
    """``value`` with every lone UTF-16 surrogate (which JSON can carry escaped, and
    which is no Unicode text) replaced: keys and strings alike."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_valid_unicode(k): _valid_unicode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid_unicode(item) for item in value]
    return value


def _coherent(path: str, body: dict[str, Any]) -> None:
    if path in ("/tokenize", "/detokenize") and not body.get("model"):
        body["model"] = CHAT_MODEL  # the fuzzed server serves two models: name one
    if path == "/detokenize" and isinstance(body.get("tokens"), list):
        body["tokens"] = [t % VOCABULARY for t in body["tokens"] if isinstance(t, int)]
    if path in ("/api/embed", "/v1/embeddings") and body.get("model") != EMBED_MODEL:
        _no_empty_texts(body)  # a model that adds no tokens of its own has none to embed
    if path in GENERATING and body.get("model") == EMBED_MODEL:
        body["model"] = CHAT_MODEL  # an embedding model generates nothing
    if path == "/v1/completions" and not isinstance(body.get("prompt"), str):
        body["prompt"] = PLAIN_TEXT_PROMPT
    if path in ("/v1/completions", "/api/generate"):
        body.pop("suffix", None)  # the served model has no fill-in-the-middle tokens
    if isinstance(body.get("lora"), list):
        body["lora"] = []  # the served model has no adapters to choose
    for key in ("think", "reasoning_effort", "thinking", "chat_template_kwargs"):
        body.pop(key, None)  # the served model cannot think, its template has no switches
    if isinstance(body.get("reasoning"), dict):
        body["reasoning"].pop("effort", None)
    if isinstance(body.get("output_config"), dict):
        body["output_config"].pop("effort", None)
    if path == "/api/create":
        body.pop("quantize", None)  # the served model is quantized already
        body.pop("template", None)
    if body.get("top_logprobs") and body.get("logprobs") is False:
        body["logprobs"] = True
    if isinstance(body.get("dimensions"), (int, float)):
        body["dimensions"] = min(int(body["dimensions"]), DIMENSIONS)
    _tools_coherent(body)
    _schemas_valid(body)


def _no_empty_texts(body: dict[str, Any]) -> None:
    texts = body.get("input")
    if isinstance(texts, list):
        body["input"] = [t or PLAIN_TEXT_PROMPT for t in texts]
    elif texts == "" and body.get("model") is not None:
        body["input"] = PLAIN_TEXT_PROMPT


def _tool_names(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            function = tool.get("function")
            name = function.get("name") if isinstance(function, dict) else tool.get("name")
            if isinstance(name, str):
                names.append(name)
    return names


def _tools_coherent(body: dict[str, Any]) -> None:
    names = _tool_names(body)
    if len(set(names)) != len(names):  # tool names must be unique
        body.pop("tools", None)
        body.pop("tool_choice", None)
    choice = body.get("tool_choice")
    forced = choice not in (None, "auto", "none") and not (
        isinstance(choice, dict) and choice.get("type") in ("auto", "none"))
    if forced:  # a call takes more tokens than the server's --max-tokens 4 allows
        body.pop("tool_choice", None)


def _schemas_valid(body: dict[str, Any]) -> None:
    """Every embedded JSON schema valid by its metaschema, every arguments text JSON."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict):
        _fix_schema(fmt["json_schema"], "schema")
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("format"), dict):
        _fix_schema(text["format"], "schema")
    output = body.get("output_config")
    if isinstance(output, dict) and isinstance(output.get("format"), dict):
        _fix_schema(output["format"], "schema")
    if isinstance(body.get("format"), dict):
        _fix_schema(body, "format")
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            holder = tool.get("function") if isinstance(tool.get("function"), dict) else tool
            for key in ("parameters", "input_schema"):
                if key in holder:
                    _fix_schema(holder, key, {"type": "object"})
    for message in body.get("messages") or []:
        for call in (message.get("tool_calls") or []) if isinstance(message, dict) else []:
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                _fix_arguments(call["function"])
    for item in body.get("input") if isinstance(body.get("input"), list) else []:
        if isinstance(item, dict) and item.get("type") == "function_call":
            _fix_arguments(item)


def _fix_arguments(holder: dict[str, Any]) -> None:
    """A tool call's arguments text must be a JSON object."""
    if isinstance(holder.get("arguments"), str):
        try:
            ok = isinstance(json.loads(holder["arguments"] or "{}"), dict)
        except ValueError:
            ok = False
        if not ok:
            holder["arguments"] = "{}"


def _fix_schema(holder: dict[str, Any], key: str, fallback: Any = None) -> None:
    """A valid schema, and for an answer's format one whose shortest answer fits in the
    fuzzed server's --max-tokens 4 (any object)."""
    schema = holder.get(key)
    if schema is None:
        return
    if fallback is None:  # an answer's format
        holder[key] = {"type": "object"}
        return
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except (jsonschema.SchemaError, TypeError, AttributeError):
        holder[key] = fallback
