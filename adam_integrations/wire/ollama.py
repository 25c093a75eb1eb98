"""The Ollama wire format, in one place: what the Ollama client backend sends and reads,
and what ``adam serve`` reads and answers, so the two sides can never drift apart.

- options: Ollama's ``options`` object <-> ``GenerationConfig`` (``ChatRequest.to_config``,
  ``options_from_config``), and ``format`` for structured output and forced tool calls;
- messages: Ollama chat messages <-> ``ChatMessage`` (tool calls with object arguments,
  ``tool_name`` on tool results);
- counts and durations: integer nanoseconds on the ``done`` line <-> ``Usage``;
- responses: the server's lines are built with the ``ollama`` package's own response
  models (``ChatResponse``, ``GenerateResponse``, ...), the exact shapes its client reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import ollama
from pydantic import AfterValidator, ConfigDict, Field, WithJsonSchema, create_model

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.loaded import KEEP_ALIVE_PATTERN
from adam_integrations.core.stores.ollama_parameters import (
    OPTIONS,
    RUNNER_OPTION_TYPES,
    option_fields,
)
from adam_integrations.core.tools import any_call_schema
from adam_integrations.core.types import (
    THINKING_LEVELS,
    ChatMessage,
    Chunk,
    GenerationConfig,
    TokenLogprob,
    ToolCall,
    Usage,
)
from adam_integrations.wire.request import (
    CalledFunction,
    NullExtras,
    RequestPart,
    Role,
    Tool,
    WireRequest,
    exactly,
    ranged,
)

# -- the requests (checked and published as pydantic models: ``wire.request``) ----------
_SCHEMA_TYPES: dict[Any, Any] = {int: int, bool: bool}


def _option_type(key: str, kinds: Any) -> Any:
    if key == "num_predict":
        return Annotated[int | None, Field(
            description="tokens to generate at most; -1: until the model stops",
            json_schema_extra={"not": {"const": 0}}), AfterValidator(_not_zero)]
    if key == "stop":
        return list[str] | str | None
    if key in OPTIONS:
        return ranged(OPTIONS[key][0])
    return _SCHEMA_TYPES.get(kinds, float) | None


def _not_zero(value: int | None) -> int | None:
    if value == 0:
        raise ValueError("num_predict 0 generates nothing")
    return value


_OPTION_FIELDS: dict[str, Any] = {
    key: (_option_type(key, kinds), None)
    for key, kinds in {**{k: t for k, (_, t) in OPTIONS.items()}, **RUNNER_OPTION_TYPES}.items()}
Options = create_model("OllamaOptions", __base__=RequestPart, **_OPTION_FIELDS)
"""Ollama's ``options`` object: the sampling options (``OPTIONS``, in the config's ranges,
``GENERATION_RANGES``) and Ollama's runner options, kept for it; options not listed are
ignored, as Ollama ignores them."""
Options.described = ("sampling options (and Ollama's runner options, kept for it); "
                     "options not listed are ignored, as Ollama ignores them")


class OllamaParameters(Options):  # type: ignore[misc,valid-type]
    """A created model's parameters: Ollama's options as PARAMETER lines (none unknown)."""

    model_config = ConfigDict(extra="forbid")
    described = "Ollama options, as PARAMETER lines"


_KEEP_ALIVE = Field(None, description="how long the model stays loaded afterwards: seconds "
                                      "or a duration such as \"5m\"; 0 unloads, negative "
                                      "keeps it")
KeepAlive = Annotated[str, Field(pattern=KEEP_ALIVE_PATTERN)] | float | None
_STREAM = Field(None, description="stream the answer (default true)")
_NO_IMAGES = Field(None, max_length=0, description="no vision model is served")


class OllamaToolCall(RequestPart):
    """A tool call in an earlier answer."""

    function: CalledFunction


class OllamaMessage(NullExtras):
    """An Ollama chat message (``ChatMessage.coerce`` reads it)."""

    role: Role
    content: str | None = None
    thinking: str | None = None
    tool_name: str | None = None
    images: list[Any] | None = _NO_IMAGES
    tool_calls: list[OllamaToolCall] | None = None


class _Generating(WireRequest):
    """The fields ``/api/chat`` and ``/api/generate`` share."""

    model: str
    stream: bool | None = _STREAM
    format: Literal["json", ""] | dict[str, Any] | None = Field(
        None, description="\"json\", or a JSON schema the answer must follow")
    options: Options | None = None  # type: ignore[valid-type]
    think: bool | Literal[THINKING_LEVELS] | None = None  # type: ignore[valid-type]
    keep_alive: KeepAlive = _KEEP_ALIVE
    logprobs: bool | None = Field(None, description="each generated token's log "
                                                    "probability, on its line")
    top_logprobs: int | None = Field(None, ge=0, le=20, description="the most likely "
                                                                   "tokens at each position")

    def to_config(self) -> GenerationConfig:
        """The request's ``options``, ``format``, ``think``, log probabilities and tools
        as a GenerationConfig (unknown options are ignored, as Ollama ignores them)."""
        fields = option_fields(self.options.plain() if self.options else {})
        if self.format not in (None, ""):
            fields["response_format"] = self.format
        for key in ("logprobs", "top_logprobs", "think"):  # a think level is kept
            if getattr(self, key) is not None:
                fields[key] = getattr(self, key)
        tools = getattr(self, "tools", None)
        if tools:
            fields["tools"] = [tool.plain() for tool in tools]
        return GenerationConfig(**fields)


class ChatRequest(_Generating):
    """``POST /api/chat``."""

    messages: list[OllamaMessage] | None = None
    tools: list[Tool] | None = None

    def chat_messages(self) -> list[ChatMessage]:
        return [ChatMessage.coerce(message.plain()) for message in self.messages or []]


class GenerateRequest(_Generating):
    """``POST /api/generate``."""

    prompt: str | None = None
    system: str | None = None
    raw: bool | None = None
    suffix: str | None = Field(None, description="fill-in-the-middle: the text after the "
                                                 "insertion (models with FIM tokens)")
    images: list[Any] | None = _NO_IMAGES


class EmbedRequest(WireRequest):
    """``POST /api/embed``."""

    model: str
    input: str | list[str] | None = None
    truncate: exactly(True) = Field(  # type: ignore[valid-type]
        None, description="texts longer than the model's context are always cut (false "
                          "is not available)")
    dimensions: int | None = Field(None, ge=1, description="keep the first N dimensions "
                                                          "(renormalised)")
    keep_alive: KeepAlive = _KEEP_ALIVE
    options: dict[str, Any] | None = None

    def texts(self) -> list[str]:
        """The texts to embed (``""`` is no text, as Ollama reads it)."""
        if not self.input:
            return []
        return [self.input] if isinstance(self.input, str) else list(self.input)


class EmbeddingsRequest(WireRequest):
    """``POST /api/embeddings`` (the older route)."""

    model: str
    prompt: str | None = None
    keep_alive: KeepAlive = _KEEP_ALIVE
    options: dict[str, Any] | None = None


_GGUF_FILE = {"type": "object", "minProperties": 1, "maxProperties": 1,
              "propertyNames": {"pattern": "\\.[Gg][Gg][Uu][Ff]$"},
              "additionalProperties": {"type": "string", "pattern": "^sha256[:-][0-9a-f]{64}$"},
              "description": "{\"model.gguf\": \"sha256:<hex>\"}: a GGUF uploaded with POST "
                             "/api/blobs/sha256:<hex>"}


class CreateRequest(WireRequest):
    """``POST /api/create``: a model in Ollama's store."""

    model: str
    from_: str | None = Field(None, alias="from", min_length=1,
                              description="the model to start from (see /api/tags)")
    files: Annotated[dict[Annotated[str, Field(pattern=r"\.[Gg][Gg][Uu][Ff]$")],
                          Annotated[str, Field(pattern="^sha256[:-][0-9a-f]{64}$")]],
                     Field(min_length=1, max_length=1), WithJsonSchema(_GGUF_FILE)
                     ] | None = None
    template: str | None = Field(None, description="a Jinja chat template (run here and "
                                                   "turned into Ollama's), or an Ollama Go "
                                                   "template (kept for Ollama)")
    system: str | None = None
    parameters: OllamaParameters | None = None
    messages: list[OllamaMessage] | None = None
    license: str | list[str] | None = None
    quantize: str | None = Field(None, description="quantize the model (an F16/BF16/F32 "
                                                   "GGUF) with llama.cpp's quantizer, e.g. "
                                                   "q4_K_M (adam quantize)")
    adapters: dict[str, str] | None = Field(None, description=(
        "LoRA adapters as uploaded blobs, by file name: one GGUF adapter "
        "({\"adapter.gguf\": \"sha256:<hex>\"}) or a PEFT adapter's two files "
        "(adapter_config.json and adapter_model.safetensors)"))
    overwrite: bool | None = Field(None, description="adam's own: replace a model of this "
                                                     "name that adam did not make (one "
                                                     "from ollama pull); without it, a 409")
    stream: bool | None = _STREAM


class PullRequest(WireRequest):
    """``POST /api/pull``."""

    model: str
    stream: bool | None = _STREAM
    insecure: bool | None = None


class ShowRequest(WireRequest):
    """``POST /api/show``."""

    model: str
    verbose: bool | None = None


class CopyRequest(WireRequest):
    """``POST /api/copy``: another name for a model."""

    source: str
    destination: str


class DeleteRequest(WireRequest):
    """``DELETE /api/delete``."""

    model: str


def nanoseconds(seconds: float) -> int:
    """Seconds as Ollama's integer nanoseconds."""
    return int(seconds * 1e9)


def now_rfc3339() -> str:
    """The current time as Ollama writes ``created_at``."""
    return rfc3339(datetime.now(timezone.utc))


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# -- options -----------------------------------------------------------------------------
def chat_request_to_wire(
    model: str, messages: list[ChatMessage], config: GenerationConfig, *,
    num_ctx: int | None = None, keep_alive: Any = None,
) -> dict[str, Any]:
    """The ``/api/chat`` request (streamed) for ``config``: what ``ChatRequest.to_config``
    reads back as the same config (the Ollama backend sends it).

    Example:
        >>> body = chat_request_to_wire("qwen3", [ChatMessage("user", "Hi")],
        ...                             GenerationConfig(max_tokens=8, think=False))
        >>> body["options"], body["think"], ChatRequest.parse(body).to_config().max_tokens
        ({'num_predict': 8}, False, 8)
    """
    if config.preserve_thinking is not None:
        raise InvalidRequestError(
            "Ollama's API has no way to pass preserve_thinking to a model's template; "
            "leave it out, or serve the model with adam serve, vLLM or llama-server")
    if config.lora is not None:
        raise InvalidRequestError(
            "Ollama's API has no per-request adapters; create a model with the adapter "
            "(a Modelfile's ADAPTER line) and ask for it by name", param="lora")
    request: dict[str, Any] = {
        "model": model, "messages": [message_to_wire(m) for m in messages], "stream": True,
        "options": options_from_config(config, num_ctx), "keep_alive": keep_alive,
        "format": format_from_config(config), **logprob_fields(config)}
    if config.think is not None:
        request["think"] = config.reasoning_effort or config.think
    tools = tools_from_config(config)
    if tools:
        request["tools"] = tools
    return request


def options_from_config(config: GenerationConfig, num_ctx: int | None = None
                        ) -> dict[str, Any]:
    """The ``options`` object for ``config`` (unset values left out)."""
    by_field = {name: key for key, (name, _) in OPTIONS.items()}
    options = {by_field[name]: getattr(config, name) for name in by_field}
    options["stop"] = config.stop or None
    options["num_ctx"] = num_ctx
    return {k: v for k, v in options.items() if v is not None}


def format_from_config(config: GenerationConfig) -> Any:
    """The ``format`` field: the response schema, or a forced tool call's schema (Ollama has
    no ``tool_choice``; a grammar for the call's JSON forces it instead)."""
    if config.forced_call:
        return any_call_schema(config.forced_tools)
    if config.response_format is not None:
        return config.response_format.schema or "json"
    return None


def logprob_fields(config: GenerationConfig) -> dict[str, Any]:
    """The request's ``logprobs`` and ``top_logprobs`` (none when not asked for)."""
    if not config.logprobs:
        return {}
    return {"logprobs": True, "top_logprobs": config.top_logprobs or 0}


def logprobs_from_wire(entries: Any) -> list[TokenLogprob]:
    """A line's ``logprobs`` (dicts, or the ``ollama`` package's objects) as core ones."""
    return [_logprob(entry) for entry in entries or []]


def _logprob(entry: Any) -> TokenLogprob:
    get = entry.get if isinstance(entry, Mapping) else lambda key: getattr(entry, key, None)
    token = str(get("token") or "")
    return TokenLogprob(token, float(get("logprob") or 0.0),
                        list(get("bytes") or token.encode()),
                        [_logprob(top) for top in get("top_logprobs") or []])


def tools_from_config(config: GenerationConfig) -> list[dict[str, Any]] | None:
    """The ``tools`` field (None when tools are off or forced through ``format``)."""
    if not config.tools_active or config.forced_call:
        return None
    return [{"type": "function", "function": {
        "name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in config.tools]




# -- errors ------------------------------------------------------------------------------
ERROR_SCHEMA: dict[str, Any] = {"type": "object", "required": ["error"],
                                "properties": {"error": {"type": "string"}}}
"""What ``error_object`` answers, as a JSON schema."""


def error_object(message: str) -> dict[str, Any]:
    """Ollama's error body, which its clients read into ``ResponseError``.

    Example:
        >>> error_object("model 'x' not found")
        {'error': "model 'x' not found"}
    """
    return {"error": message}


# -- messages ----------------------------------------------------------------------------
def message_to_wire(message: ChatMessage) -> dict[str, Any]:
    """A core message as an Ollama chat message."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.thinking:
        out["thinking"] = message.thinking
    if message.tool_calls:
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}}
                             for c in message.tool_calls]
    if message.role == "tool" and message.name:
        out["tool_name"] = message.name
    return out


def tool_call_to_wire(call: ToolCall, index: int) -> dict[str, Any]:
    return {"id": call.id, "function": {"index": index, "name": call.name,
                                        "arguments": call.arguments}}


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:8]}"


# -- counts and durations ----------------------------------------------------------------
def usage_from_response(part: Any) -> Usage:
    """The counts and durations of a ``done`` line (an ``ollama`` response object)."""
    return Usage(
        prompt_tokens=part.prompt_eval_count or 0, completion_tokens=part.eval_count or 0,
        load_seconds=(part.load_duration or 0) / 1e9,
        prompt_seconds=(part.prompt_eval_duration or 0) / 1e9,
        completion_seconds=(part.eval_duration or 0) / 1e9,
        total_seconds=(part.total_duration or 0) / 1e9)


def done_fields(usage: Usage | None, finish_reason: str | None,
                load_seconds: float = 0.0) -> dict[str, Any]:
    """The ``done`` line's fields; ``load_seconds``: a load before generation started.

    ``prompt_eval_count`` counts the whole prompt, as Ollama's does: a prefix reused
    from the KV cache (prompt caching) counts too, so clients that read it as the
    prompt's length (ChatOllama's ``usage_metadata``, Haystack) see the prompt's length.
    The cached part is in the dialects that have a field for it (OpenAI's
    ``cached_tokens``, Anthropic's ``cache_read_input_tokens``)."""
    usage = usage or Usage()
    return {
        "done": True,
        "done_reason": finish_reason or "stop",
        "total_duration": nanoseconds(usage.total_seconds + load_seconds),
        "load_duration": nanoseconds(usage.load_seconds + load_seconds),
        "prompt_eval_count": usage.prompt_tokens,
        "prompt_eval_duration": nanoseconds(usage.prompt_seconds),
        "eval_count": usage.completion_tokens,
        "eval_duration": nanoseconds(usage.completion_seconds),
    }


# -- responses (server side) -------------------------------------------------------------
def _dump(response: Any) -> dict[str, Any]:
    return response.model_dump(mode="json", exclude_none=True, by_alias=True)


def chat_line(model: str, chunk: Chunk, load_seconds: float = 0.0) -> dict[str, Any]:
    """One ``/api/chat`` line for ``chunk`` (with the counts when it is the last)."""
    message = ollama.Message(role="assistant", content=chunk.text,
                             thinking=chunk.thinking or None)
    done = _done(chunk, load_seconds)
    line = _dump(ollama.ChatResponse(model=model, created_at=now_rfc3339(), message=message,
                                     **done))
    if chunk.tool_calls:  # the ollama models have no call id or index; Ollama sends both
        line["message"]["tool_calls"] = [tool_call_to_wire(c, i)
                                         for i, c in enumerate(chunk.tool_calls)]
    if chunk.logprobs:
        line["logprobs"] = [logprob.to_dict() for logprob in chunk.logprobs]
    return line


def generate_line(model: str, chunk: Chunk, load_seconds: float = 0.0) -> dict[str, Any]:
    """One ``/api/generate`` line for ``chunk``."""
    done = _done(chunk, load_seconds)
    if done["done"]:
        done["context"] = []
    line = _dump(ollama.GenerateResponse(model=model, created_at=now_rfc3339(),
                                         response=chunk.text, thinking=chunk.thinking or None,
                                         **done))
    if chunk.logprobs:
        line["logprobs"] = [logprob.to_dict() for logprob in chunk.logprobs]
    return line


def _done(chunk: Chunk, load_seconds: float) -> dict[str, Any]:
    if chunk.usage is None and chunk.finish_reason is None:
        return {"done": False}
    return done_fields(chunk.usage, chunk.finish_reason, load_seconds)


def merged_chat(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """One non-streamed ``/api/chat`` answer from the streamed lines."""
    merged = dict(lines[-1])
    message: dict[str, Any] = {"role": "assistant",
                               "content": "".join(x["message"].get("content", "")
                                                  for x in lines)}
    thinking = "".join(x["message"].get("thinking", "") for x in lines)
    if thinking:
        message["thinking"] = thinking
    calls = [c for x in lines for c in x["message"].get("tool_calls", [])]
    if calls:
        message["tool_calls"] = calls
    merged["message"] = message
    _merge_logprobs(merged, lines)
    return merged


def merged_generate(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """One non-streamed ``/api/generate`` answer from the streamed lines."""
    merged = dict(lines[-1])
    merged["response"] = "".join(line.get("response", "") for line in lines)
    thinking = "".join(line.get("thinking", "") for line in lines)
    if thinking:
        merged["thinking"] = thinking
    _merge_logprobs(merged, lines)
    return merged


def _merge_logprobs(merged: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    logprobs = [entry for line in lines for entry in line.get("logprobs", [])]
    if logprobs:
        merged["logprobs"] = logprobs


def model_details(is_gguf: bool, family: str | None, parameters: int | None,
                  quantization: str | None) -> dict[str, Any]:
    """The ``details`` object of ``/api/tags``, ``/api/ps`` and ``/api/show``."""
    return {"parent_model": "", "format": "gguf" if is_gguf else "safetensors",
            "family": family or "", "families": [family] if family else [],
            "parameter_size": parameter_size(parameters),
            "quantization_level": quantization or ""}


def parameter_size(parameters: int | None) -> str:
    """Ollama's size label, e.g. "135M" or "8.2B"."""
    if not parameters:
        return ""
    if parameters >= 1e9:
        return f"{parameters / 1e9:.1f}B"
    return f"{parameters / 1e6:.0f}M"
