"""The OpenAI chat-completions and embeddings wire format, in one place: what ``adam
serve``'s ``/v1`` routes read and answer (and what an OpenAI-compatible client backend
sends and reads).

Messages accept what clients send: string or text-part content, ``developer`` as
``system``, assistant ``tool_calls`` with JSON-string (or object) arguments, reasoning
as ``reasoning`` or ``reasoning_content``. Reasoning goes out next to ``content``, never
inside it, under both names (``reasoning_fields``).

The client side (``backends.remote.openai_compat``): ``message_to_wire`` and ``request_body``
build a request for a serving engine, ``StreamReader`` turns its streamed chunks into
core chunks (reasoning read from ``reasoning`` or ``reasoning_content``, as vLLM renamed
it; ``<think>`` left in ``content`` by an engine without a reasoning parser split off
the same way the local backends split it; tool-call deltas assembled by index).
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field

from adam_integrations.core.errors import AdamError, InvalidRequestError
from adam_integrations.core.output import ResponseParser, tool_call_from_json
from adam_integrations.core.tools import any_call_schema
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    GenerationConfig,
    InvalidToolCall,
    TokenLogprob,
    ToolCall,
    Usage,
)
from adam_integrations.wire.request import (
    CalledFunction,
    ClosedPart,
    NullExtras,
    ReasoningEffort,
    RequestPart,
    Role,
    Tool,
    WireRequest,
    ranged,
)

FINISH_REASONS = {"stop": "stop", "length": "length", "cancelled": "stop"}

# -- the requests (checked and published as pydantic models: ``wire.request``) ----------
TEMPLATE_SWITCHES = {"enable_thinking": "think", "preserve_thinking": "preserve_thinking"}
"""The ``chat_template_kwargs`` read (as vLLM and SGLang take them), and their options."""


class TextPart(RequestPart):
    """A text part of a message's content."""

    type: Literal["text"] | None = None
    text: str


class OpenAIToolCall(RequestPart):
    """A tool call in an earlier answer."""

    id: str | None = None
    type: Literal["function"] | None = None
    function: CalledFunction


class OpenAIMessage(NullExtras):
    """An OpenAI chat message (``ChatMessage.coerce`` reads it)."""

    role: Role
    content: str | list[str | TextPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    thinking: str | None = None
    tool_name: str | None = None
    tool_calls: list[OpenAIToolCall] | None = None


class StreamOptions(RequestPart):
    """``stream_options``."""

    described = "include_usage: a last event with the token counts"
    include_usage: bool | None = None


class LoraChoice(ClosedPart):
    """One entry of llama-server's per-request ``lora``."""

    described = "id: the adapter's index on this model; scale: its weight (0: off)"
    id: int = Field(ge=0)
    scale: float = Field(1.0, allow_inf_nan=False)


class _Sampled(WireRequest):
    """The fields chat and text completions share."""

    model: str
    stream: bool | None = Field(None, description="stream the answer as server-sent events")
    stream_options: StreamOptions | None = None
    max_tokens: ranged("max_tokens") = None  # type: ignore[valid-type]
    temperature: ranged("temperature") = None  # type: ignore[valid-type]
    top_p: ranged("top_p") = None  # type: ignore[valid-type]
    seed: ranged("seed") = None  # type: ignore[valid-type]
    presence_penalty: ranged("presence_penalty") = None  # type: ignore[valid-type]
    frequency_penalty: ranged("frequency_penalty") = None  # type: ignore[valid-type]
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1, le=1, description="answers per request: 1 (send "
                                                       "several requests for more)")
    user: str | None = None
    lora: list[LoraChoice] | None = Field(None, description=(
        "llama-server's per-request adapters: the model's LoRA adapters this request "
        "uses (the others are off); adam serve --lora loads them"))

    def to_config(self) -> GenerationConfig:
        """The sampling, tools, ``response_format`` and reasoning fields as a
        GenerationConfig."""
        fields: dict[str, Any] = {}
        logprobs = getattr(self, "logprobs", None)
        if isinstance(logprobs, int) and not isinstance(logprobs, bool):  # /v1/completions
            fields.update(logprobs=True, top_logprobs=logprobs)
        elif logprobs is not None:
            fields.update(logprobs=logprobs, top_logprobs=getattr(self, "top_logprobs", None))
        limit = getattr(self, "max_completion_tokens", None)
        if (limit if limit is not None else self.max_tokens) is not None:
            fields["max_tokens"] = limit if limit is not None else self.max_tokens
        for key in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty",
                    "stop", "parallel_tool_calls"):
            if getattr(self, key, None) is not None:
                fields[key] = getattr(self, key)
        if self.lora is not None:
            fields["lora"] = [(choice.id, choice.scale) for choice in self.lora]
        fields.update(self._chat_fields())
        return GenerationConfig(**fields)

    def _chat_fields(self) -> dict[str, Any]:
        return {}


class ToolChoiceFunction(RequestPart):
    """The tool a forced call calls."""

    name: str = Field(min_length=1)


class ToolChoice(RequestPart):
    """A forced call of one tool."""

    type: Literal["function"]
    function: ToolChoiceFunction


class TextFormat(RequestPart):
    """``response_format``: text, or any JSON object."""

    type: Literal["text", "json_object"]


class JsonSchemaSpec(RequestPart):
    """A response format's JSON schema."""

    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class JsonSchemaFormat(RequestPart):
    """``response_format``: JSON following a schema."""

    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


class TemplateSwitches(ClosedPart):
    """``chat_template_kwargs``."""

    described = ("vLLM's and SGLang's template switches: enable_thinking, "
                 "preserve_thinking")
    enable_thinking: bool | None = None
    preserve_thinking: bool | None = None


class ChatCompletionRequest(_Sampled):
    """``POST /v1/chat/completions``."""

    messages: list[OpenAIMessage] = Field(min_length=1)
    max_completion_tokens: ranged("max_tokens") = None  # type: ignore[valid-type]
    tools: list[Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: TextFormat | JsonSchemaFormat | None = None
    reasoning_effort: ReasoningEffort | None = None
    chat_template_kwargs: TemplateSwitches | None = None
    logprobs: bool | None = Field(None, description="each generated token's log "
                                                    "probability")
    top_logprobs: int | None = Field(None, ge=0, le=20, description="the most likely "
                                     "tokens at each position (with logprobs)")

    def chat_messages(self) -> list[ChatMessage]:
        return [ChatMessage.coerce(message.plain()) for message in self.messages]

    def _chat_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self.tools:
            fields["tools"] = [tool.plain() for tool in self.tools]
        if self.tool_choice is not None:  # read by core.tools.coerce_tool_choice
            fields["tool_choice"] = (self.tool_choice if isinstance(self.tool_choice, str)
                                     else self.tool_choice.plain())
        fmt = self.response_format
        if isinstance(fmt, TextFormat):
            if fmt.type == "json_object":
                fields["response_format"] = "json"
        elif fmt is not None:
            fields["response_format"] = fmt.plain()
        switches = self.chat_template_kwargs
        for name, value in (switches.plain() if switches else {}).items():
            fields[TEMPLATE_SWITCHES[name]] = value
        if self.reasoning_effort is not None:
            # a level is kept (see GenerationConfig); "minimal" is off, as on /v1/responses
            effort = self.reasoning_effort
            fields["think"] = effort not in ("none", "minimal") and effort
        return fields


_TOKEN_IDS = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class CompletionRequest(_Sampled):
    """``POST /v1/completions``."""

    prompt: (Annotated[str, Field(min_length=1)]
             | Annotated[list[str], Field(min_length=1, max_length=1)]
             | _TOKEN_IDS
             | Annotated[list[_TOKEN_IDS], Field(min_length=1, max_length=1)]) = Field(
        description="the text to continue, or its token ids as the model reads the text "
                    "(one prompt per request)")
    echo: bool | None = Field(None, description="the prompt before the completion; with "
                                                "logprobs, the prompt's tokens scored too "
                                                "(the first has none)")
    suffix: str | None = Field(None, description="fill-in-the-middle: the text after the "
                                                 "insertion (models with FIM tokens)")
    logprobs: int | None = Field(None, ge=0, le=5, description="each token's log "
                                 "probability, with this many of the most likely tokens "
                                 "at each position")
    best_of: int | None = Field(None, ge=1, le=1)


class EmbeddingRequest(WireRequest):
    """``POST /v1/embeddings``."""

    model: str
    input: str | Annotated[list[str], Field(min_length=1)] = Field(
        description="a text, or a list of texts (token arrays are not taken)")
    encoding_format: Literal["float", "base64"] | None = Field(
        None, description="base64: little-endian float32 vectors")
    dimensions: int | None = Field(None, ge=1, description="keep the first N dimensions "
                                                          "(renormalised)")
    user: str | None = None


class TokenizeRequest(WireRequest):
    """vLLM's ``POST /tokenize`` (which lm-eval's remote tokenizer uses); vLLM refuses
    fields it does not list, and so does this."""

    model_config = ClosedPart.model_config

    model: str | None = None
    prompt: str = Field(description="the text to split into tokens")
    add_special_tokens: bool | None = Field(None, description="with the BOS token the "
                                            "model puts first (default true)")


class DetokenizeRequest(WireRequest):
    """vLLM's ``POST /detokenize`` (fields not listed are refused)."""

    model_config = ClosedPart.model_config

    model: str | None = None
    tokens: list[Annotated[int, Field(ge=0)]] = Field(description="token ids to spell out")


class Dialect(Protocol):
    """What a server's ``/v1`` accepts beyond OpenAI's API (each engine's profile in
    ``backends.remote.openai_compat.ENGINES`` is one)."""

    name: str
    thinking_switch: bool  # chat_template_kwargs (enable_thinking, preserve_thinking)
    sampling_extras: bool  # top_k, min_p, repetition_penalty
    schema_in_json_object: bool  # response_format json_object with a schema in it
    forced_tools_by_schema: bool  # a forced tool call goes as structured output
    reasoning_back: bool  # earlier turns' reasoning sent back in messages


def sampling_to_wire(config: GenerationConfig, dialect: Dialect) -> dict[str, Any]:
    """The sampling and length fields of a request (``ChatCompletionRequest.to_config``
    reads them)."""
    body: dict[str, Any] = {}
    if config.max_tokens is not None:
        key = "max_completion_tokens" if dialect.name == "openai" else "max_tokens"
        body[key] = config.max_tokens
    for field in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
        if getattr(config, field) is not None:
            body[field] = getattr(config, field)
    if config.stop:
        body["stop"] = list(config.stop)
    if config.lora is not None:  # llama-server's (and adam serve's) per-request adapters
        body["lora"] = [{"id": index, "scale": scale} for index, scale in config.lora]
    if dialect.sampling_extras:
        for field in ("top_k", "min_p", "repetition_penalty"):
            if getattr(config, field) is not None:
                body[field] = getattr(config, field)
    return body


def chat_request_to_wire(model: str, messages: list[ChatMessage], config: GenerationConfig,
                         dialect: Dialect) -> tuple[dict[str, Any], bool]:
    """A streamed ``/v1/chat/completions`` request for ``config`` in ``dialect``, and
    whether a forced tool call goes as structured output (the reader then reads the
    answer as the call). ``ChatCompletionRequest.to_config`` is its inverse on
    this server."""
    body = sampling_to_wire(config, dialect)
    if config.logprobs:
        body.update(logprobs=True, top_logprobs=config.top_logprobs or 0)
    body.update(model=model, stream=True, stream_options={"include_usage": True},
                messages=[message_to_wire(m, reasoning=dialect.reasoning_back)
                          for m in messages])
    forced = config.forced_call and dialect.forced_tools_by_schema
    if forced:
        body["response_format"] = response_format_to_wire(
            call_schema_format(config), schema_in_json_object=dialect.schema_in_json_object)
    elif config.tools_active:
        body["tools"] = [t.to_openai() for t in config.tools]
        choice = config.tool_choice or "auto"
        body["tool_choice"] = (choice if choice in ("auto", "required") else
                               {"type": "function", "function": {"name": choice}})
        if config.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = config.parallel_tool_calls
    if config.response_format is not None and not forced:
        schema = config.response_format.schema
        body["response_format"] = response_format_to_wire(
            dict(schema) if schema is not None else None,
            schema_in_json_object=dialect.schema_in_json_object)
    template_kwargs: dict[str, Any] = {}
    if config.think is not None and dialect.thinking_switch:
        template_kwargs["enable_thinking"] = config.think
    if config.preserve_thinking is not None:
        if not dialect.thinking_switch:
            raise InvalidRequestError(
                f"{dialect.name} takes no chat-template switches, so preserve_thinking "
                "cannot reach the model; leave it out (vLLM, SGLang and llama-server take "
                "it)")
        template_kwargs["preserve_thinking"] = config.preserve_thinking
    if template_kwargs:
        body["chat_template_kwargs"] = template_kwargs
    if config.reasoning_effort:  # a level: the engine's template takes it as it can
        body["reasoning_effort"] = config.reasoning_effort
    return body, forced


def completion_request_to_wire(model: str, prompt: str, config: GenerationConfig,
                               dialect: Dialect, suffix: str | None = None
                               ) -> dict[str, Any]:
    """A streamed ``/v1/completions`` request (max_tokens, and logprobs as the number of
    alternatives, as the legacy route takes them)."""
    body = sampling_to_wire(config, dialect)
    if "max_completion_tokens" in body:  # the completions route knows max_tokens only
        body["max_tokens"] = body.pop("max_completion_tokens")
    body.update(model=model, prompt=prompt, stream=True)
    if config.logprobs:
        body["logprobs"] = config.top_logprobs or 0
    if suffix is not None:
        body["suffix"] = suffix
    return body


ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 500: "server_error",
               503: "server_error"}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["message", "type"], "properties": {
            "message": {"type": "string"}, "type": {"type": "string"},
            "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}}
"""What ``error_object`` answers, as a JSON schema."""


def error_object(status: int, message: str, *, param: str | None = None,
                 code: str | None = None) -> dict[str, Any]:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``.

    Example:
        >>> error_object(400, "bad", param="max_tokens")["error"]["type"]
        'invalid_request_error'
    """
    return {"error": {"message": message,
                      "type": ERROR_TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}


def chat_logprobs(logprobs: list[TokenLogprob]) -> dict[str, Any]:
    """A choice's ``logprobs`` on ``/v1/chat/completions``: ``{"content": [...]}``."""
    return {"content": [logprob.to_dict() for logprob in logprobs], "refusal": None}


def completion_logprobs(logprobs: list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """A choice's ``logprobs`` on ``/v1/completions`` (the legacy shape: parallel lists,
    ``top_logprobs`` as token -> logprob maps, ``text_offset`` from ``offset``)."""
    offsets = []
    for logprob in logprobs:
        offsets.append(offset)
        offset += len(logprob.token)
    return {"tokens": [lp.token for lp in logprobs],
            "token_logprobs": [lp.logprob for lp in logprobs],
            "top_logprobs": [None if lp.logprob is None else  # an echoed prompt's first
                             {top.token: top.logprob for top in lp.top_logprobs}
                             for lp in logprobs],
            "text_offset": offsets}


def logprobs_from_wire(choice: dict[str, Any]) -> list[TokenLogprob]:
    """The tokens of a choice's ``logprobs``, in either shape."""
    data = choice.get("logprobs") or {}
    if not isinstance(data, dict):
        return []
    if "content" in data:
        return [_token_logprob(entry) for entry in data.get("content") or []]
    tops = data.get("top_logprobs") or []
    return [TokenLogprob(str(token), float(logprob or 0.0), list(str(token).encode()),
                         [TokenLogprob(t, float(v), list(t.encode()))
                          for t, v in (tops[i] if i < len(tops) and tops[i] else {}).items()])
            for i, (token, logprob) in enumerate(zip(data.get("tokens") or [],
                                                     data.get("token_logprobs") or [],
                                                     strict=False))]


def _token_logprob(entry: dict[str, Any]) -> TokenLogprob:
    token = str(entry.get("token") or "")
    return TokenLogprob(token, float(entry.get("logprob") or 0.0),
                        list(entry.get("bytes") or token.encode()),
                        [_token_logprob(top) for top in entry.get("top_logprobs") or []])


def base64_vector(vector: list[float]) -> str:
    """A vector as ``encoding_format="base64"`` sends it: little-endian float32 bytes.

    Example:
        >>> base64_vector([1.0, 0.0])
        'AACAPwAAAAA='
    """
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def tool_call_to_wire(call: ToolCall, index: int) -> dict[str, Any]:
    return {"index": index, "id": call.id or f"call_{uuid.uuid4().hex[:8]}",
            "type": "function",
            "function": {"name": call.name,
                         "arguments": json.dumps(call.arguments, ensure_ascii=False)}}


def usage_to_wire(usage: Usage | None) -> dict[str, Any]:
    if usage is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}


# -- the client side ---------------------------------------------------------------------
def message_to_wire(message: ChatMessage, *, reasoning: bool = True) -> dict[str, Any]:
    """A core message as an OpenAI chat message; ``reasoning``: pass earlier reasoning
    back as ``reasoning_content`` (vLLM, SGLang and llama.cpp's server accept it; Qwen3's
    template uses it within a tool loop)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        out["tool_calls"] = [{k: v for k, v in tool_call_to_wire(c, i).items() if k != "index"}
                             for i, c in enumerate(message.tool_calls)]
    if message.role == "tool" and message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.name and message.role in ("user", "tool"):
        out["name"] = message.name
    if reasoning and message.role == "assistant" and message.thinking:
        out["reasoning_content"] = message.thinking
    return out


def reasoning_fields(thinking: str) -> dict[str, str]:
    """A message's (or a stream delta's) reasoning under both names clients read:
    ``reasoning`` (Ollama's ``/v1``, current vLLM, the Agents SDK) and ``reasoning_content``
    (DeepSeek's name, older vLLM, llama.cpp's server, LangChain's DeepSeek and Qwen
    classes)."""
    return {"reasoning": thinking, "reasoning_content": thinking}


def call_schema_format(config: GenerationConfig) -> dict[str, Any]:
    """The JSON schema of a forced call (``{"name", "arguments"}``), for engines that
    force tool calls through structured output rather than ``tool_choice``."""
    return any_call_schema(config.forced_tools)


def response_format_to_wire(schema: dict[str, Any] | None, *, schema_in_json_object: bool
                            ) -> dict[str, Any]:
    """``response_format`` for a schema (None: any JSON object): OpenAI's ``json_schema``
    form, or ``{"type": "json_object", "schema": ...}`` (llama.cpp's servers)."""
    if schema is None:
        return {"type": "json_object"}
    if schema_in_json_object:
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema,
                                                   "strict": True}}


def sse_data(line: str) -> dict[str, Any] | None:
    """One server-sent-events line as the chunk it carries (None for blank lines,
    comments and ``[DONE]``); an ``error`` event, as vLLM and ``adam serve`` send one
    mid-stream, raises an AdamError with the server's message."""
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if not payload or payload == "[DONE]":
        return None
    try:
        data = json.loads(payload)
    except ValueError as error:
        raise AdamError(f"the server sent an event that is not JSON: {payload[:200]!r}"
                        ) from error
    if not isinstance(data, dict):
        raise AdamError(f"the server sent an event that is not an object: {payload[:200]!r}")
    if "error" in data and not data.get("choices"):
        error = data["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise AdamError(f"the server failed mid-answer: {message}")
    return data


class StreamReader:
    """Streamed chat-completion chunks (as dicts) in, core chunks out.

    ``forced_by_schema``: the answer is a forced call's JSON (see ``call_schema_format``),
    read back as a tool call at the end. ``counted``: the server sends one delta per
    token; used for ``completion_tokens`` when it reports no usage.
    """

    def __init__(self, config: GenerationConfig, *, forced_by_schema: bool = False) -> None:
        self._config = config
        self._forced = forced_by_schema
        self._parser = ResponseParser(tool_names=config.tool_names,
                                      parse_tool_calls=config.tools_active)
        self._calls: dict[int, dict[str, str]] = {}
        self._answer: list[str] = []
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._deltas = 0
        self._logprobs: list[TokenLogprob] = []  # read, not yet on a chunk

    def feed(self, chunk: dict[str, Any]) -> list[Chunk]:
        out: list[Chunk] = []
        if chunk.get("usage"):
            self._usage = usage_from_wire(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning") or delta.get("reasoning_content")
            if reasoning:
                out.append(Chunk(thinking=reasoning))
            content = delta.get("content") or choice.get("text")  # chat, or completions
            if content:
                self._deltas += 1
                if self._forced:
                    self._answer.append(content)
                else:
                    out.extend(self._parser.push(content))
            for call in delta.get("tool_calls") or []:
                self._deltas += 1
                slot = self._calls.setdefault(int(call.get("index") or 0),
                                              {"id": "", "name": "", "arguments": ""})
                function = call.get("function") or {}
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
            self._logprobs.extend(logprobs_from_wire(choice))
        out = [c for c in out if not c.empty]
        if out and self._logprobs:
            out[0].logprobs, self._logprobs = self._logprobs, []
        return out

    def finish(self) -> list[Chunk]:
        """The last chunks: what the parser held, tool calls, finish reason and usage."""
        out = self._parser.finish()
        if self._forced:
            out.append(tool_call_from_json("".join(self._answer), self._config.tool_names))
        for slot in (self._calls[i] for i in sorted(self._calls)):
            out.append(_assembled_call(slot, self._config.tool_names))
        if self._finish is None:
            raise AdamError(
                "the server ended the stream before the answer finished (no finish_reason); "
                "llama-cpp-python's server does that for a prompt longer than its context "
                "window (--n_ctx)")
        usage = self._usage or Usage(completion_tokens=self._deltas)
        reason = "length" if self._finish == "length" else "stop"
        out.append(Chunk(finish_reason=reason, usage=usage, logprobs=self._logprobs))
        return [c for c in out if not c.empty]


def usage_from_wire(usage: dict[str, Any]) -> Usage:
    details = usage.get("completion_tokens_details") or {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    return Usage(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                 completion_tokens=int(usage.get("completion_tokens") or 0),
                 reasoning_tokens=int(details.get("reasoning_tokens") or 0),
                 cached_tokens=int(prompt_details.get("cached_tokens") or 0))


def _assembled_call(slot: dict[str, str], tool_names: list[str]) -> Chunk:
    """One call from its streamed pieces, checked as every backend checks calls."""
    try:
        arguments = json.loads(slot["arguments"]) if slot["arguments"].strip() else {}
    except ValueError as error:
        call = Chunk(invalid_tool_calls=[InvalidToolCall(
            slot["name"] or None, slot["arguments"],
            f"the arguments are not valid JSON: {error}")])
    else:
        call = tool_call_from_json(json.dumps({"name": slot["name"], "arguments": arguments}),
                                   tool_names)
    for found in (*call.tool_calls, *call.invalid_tool_calls):
        found.id = slot["id"] or found.id or f"call_{uuid.uuid4().hex[:8]}"
    return call
