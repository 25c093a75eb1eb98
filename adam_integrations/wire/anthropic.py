"""Anthropic's Messages API (``POST /v1/messages``, ``/v1/messages/count_tokens``), as
Ollama serves it: what ``adam serve`` reads and answers, so tools built on the
``anthropic`` SDK run on local models.

- requests: ``system`` (a text or text blocks), ``messages`` whose content is a text or
  blocks (``text``, ``tool_use``, ``tool_result``, ``thinking``; images and documents are
  refused: no vision model is served), ``tools`` (``input_schema``), ``tool_choice``
  (``auto``, ``any``, ``tool``, ``none``), ``thinking`` (``enabled`` / ``disabled``),
  ``max_tokens``, ``stop_sequences``, sampling -> core messages and a ``GenerationConfig``;
- answers: ``MessageBuilder`` turns the core's chunks into the stream's events
  (``message_start``, ``content_block_start`` / ``_delta`` / ``_stop``, ``message_delta``,
  ``message_stop``); the non-streamed message is what the same steps build;
- errors: ``{"type": "error", "error": {"type", "message"}}`` (``error_object``);
- the client side (``backends.remote.anthropic``): ``request_to_wire`` builds a streamed
  request from core messages and settings, ``StreamReader`` turns the stream's events
  back into core chunks.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from adam_integrations.core.errors import AdamError, InvalidRequestError
from adam_integrations.core.output import tool_call_from_json
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    GenerationConfig,
    InvalidToolCall,
    ToolCall,
    Usage,
)
from adam_integrations.wire.request import (
    RequestPart,
    ToolName,
    ToolParameters,
    WireRequest,
    ranged,
)

_BLOCKS_ARE = ("content blocks here: text, tool_use, tool_result or thinking (no images: "
               "no vision model is served)")


def _kind(*kinds: str) -> Any:
    return Annotated[Literal[kinds], Field(description=_BLOCKS_ARE)]  # type: ignore[valid-type]


class TextBlock(RequestPart):
    """A text block."""

    type: _kind("text")  # type: ignore[valid-type]
    text: str | None = None


class RedactedThinkingBlock(RequestPart):
    """Thinking the model's provider hid (kept out of the prompt)."""

    type: _kind("redacted_thinking")  # type: ignore[valid-type]
    data: str | None = None


class ToolResultBlock(RequestPart):
    """A tool's result, in a user turn."""

    type: _kind("tool_result")  # type: ignore[valid-type]
    tool_use_id: str | None = None
    is_error: bool | None = None
    content: str | list[TextBlock] | None = None


class ThinkingBlock(RequestPart):
    """The model's thinking in an earlier answer."""

    type: _kind("thinking")  # type: ignore[valid-type]
    thinking: str | None = None
    signature: str | None = None


class ToolUseBlock(RequestPart):
    """A tool call in an earlier answer."""

    type: _kind("tool_use")  # type: ignore[valid-type]
    id: str | None = None
    name: str = Field(min_length=1)
    input: dict[str, Any] | None = None


class UserTurn(RequestPart):
    """A user turn: a text, or blocks."""

    role: Literal["user"]
    content: str | list[TextBlock | RedactedThinkingBlock | ToolResultBlock]


class AssistantTurn(RequestPart):
    """An assistant turn: a text, or blocks."""

    role: Literal["assistant"]
    content: str | list[TextBlock | RedactedThinkingBlock | ThinkingBlock | ToolUseBlock]


class AnthropicTool(RequestPart):
    """A client tool."""

    described = "a client tool (server tools such as web search run on Anthropic's)"
    name: ToolName
    description: str | None = None
    input_schema: ToolParameters | None = None


class ToolChoiceAny(RequestPart):
    """``tool_choice``: auto, any or none."""

    type: Literal["auto", "any", "none"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceTool(RequestPart):
    """``tool_choice``: this tool."""

    type: Literal["tool"]
    name: ToolName
    disable_parallel_tool_use: bool | None = None


class ThinkingSetting(RequestPart):
    """``thinking``."""

    type: Literal["enabled", "disabled", "adaptive", "between_tools"]
    budget_tokens: int | None = Field(None, ge=0)


class OutputFormat(RequestPart):
    """``output_config.format``."""

    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(RequestPart):
    """``output_config``."""

    described = "format: a json_schema the answer follows; effort: thinking on"
    format: OutputFormat | None = None
    effort: str | None = None


class CountTokensRequest(WireRequest):
    """``POST /v1/messages/count_tokens``."""

    model: str
    messages: list[UserTurn | AssistantTurn] = Field(
        min_length=1, description="user and assistant turns: text, or content blocks "
                                  "(text, tool_use, tool_result, thinking; no images)")
    system: str | list[TextBlock] | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: ToolChoiceAny | ToolChoiceTool | None = None
    thinking: ThinkingSetting | None = None
    output_config: OutputConfig | None = None

    def conversation(self) -> list[ChatMessage]:
        """The system prompt and the turns as the core's messages."""
        messages = [ChatMessage("system", _text(self.system if isinstance(self.system, str)
                                                else [b.plain() for b in self.system]))
                    ] if self.system else []
        for message in self.messages:
            messages.extend(_messages(message.plain()))
        return messages

    def to_config(self) -> GenerationConfig:
        """The request's settings as a GenerationConfig."""
        fields: dict[str, Any] = {}
        for key, name in (("max_tokens", "max_tokens"), ("temperature", "temperature"),
                          ("top_p", "top_p"), ("top_k", "top_k"),
                          ("stop_sequences", "stop")):
            if getattr(self, key, None) is not None:
                fields[name] = getattr(self, key)
        if self.tools:
            fields["tools"] = [_tool(tool.plain()) for tool in self.tools]
        choice = self.tool_choice
        if choice:  # read by core.tools.coerce_tool_choice; only Anthropic's extra here
            fields["tool_choice"] = choice.plain()
            if choice.disable_parallel_tool_use:
                fields["parallel_tool_calls"] = False
        if self.thinking:
            fields["think"] = self.thinking.type != "disabled"
        output = self.output_config
        if output and output.effort is not None and "think" not in fields:
            fields["think"] = True  # a local model has one effort: thinking on
        if output and output.format:
            fields["response_format"] = output.format.schema_
        return GenerationConfig(**fields)


class MessagesRequest(CountTokensRequest):
    """``POST /v1/messages``."""

    max_tokens: ranged("max_tokens", nullable=False)  # type: ignore[valid-type]
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=1)  # Anthropic's own range
    top_p: ranged("top_p") = None  # type: ignore[valid-type]
    top_k: ranged("top_k") = None  # type: ignore[valid-type]
    stream: bool | None = None
    metadata: dict[str, Any] | None = None


ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               422: "invalid_request_error", 500: "api_error", 503: "overloaded_error"}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "error"], "properties": {
        "type": {"const": "error"}, "error": {
            "type": "object", "required": ["type", "message"], "properties": {
                "type": {"type": "string"}, "message": {"type": "string"}}}}}
"""What ``error_object`` answers, as a JSON schema."""


def error_object(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body.

    Example:
        >>> error_object(404, "no such model")["error"]["type"]
        'not_found_error'
    """
    return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"),
                                       "message": message}}


def _messages(message: Any) -> list[ChatMessage]:
    """One Anthropic message as core messages: tool results become tool messages."""
    if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
        raise InvalidRequestError("each message needs a role of user or assistant",
                                  param="messages")
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        return [ChatMessage(role, content)]
    if not isinstance(content, list):
        raise InvalidRequestError("message content must be a text or a list of blocks",
                                  param="messages")
    out: list[ChatMessage] = []
    texts, thinking, calls = [], [], []
    for block in content:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "thinking" and role == "assistant":
            thinking.append(str(block.get("thinking") or ""))
        elif kind == "redacted_thinking":
            continue  # encrypted by another provider: nothing a local model can read
        elif kind == "tool_use" and role == "assistant":
            calls.append(ToolCall.coerce({"id": block.get("id"), "name": block.get("name"),
                                          "arguments": block.get("input") or {}}))
        elif kind == "tool_result" and role == "user":
            result = _text(block.get("content") or "")
            if block.get("is_error"):
                result = f"Error: {result}"
            out.append(ChatMessage("tool", result,
                                   tool_call_id=str(block.get("tool_use_id") or "")))
        else:
            raise InvalidRequestError(
                f"content blocks of type {kind!r} are not supported in {role} messages (text, "
                "tool_use, tool_result and thinking are; no vision model is served)",
                param="messages")
    if texts or calls or thinking or not out:
        out.append(ChatMessage(role, "".join(texts), tool_calls=calls,
                               thinking="".join(thinking) or None))
    return out


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, Mapping) and b.get("type") == "text"
                                         for b in content):
        return "".join(str(b.get("text") or "") for b in content)
    raise InvalidRequestError("this must be a text or a list of text blocks (no images)",
                              param="messages")


def _tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
        raise InvalidRequestError("each tool needs a name, a description and an "
                                  "input_schema (server tools such as web search run on "
                                  "Anthropic's servers)", param="tools")
    return {"type": "function", "function": {
        "name": tool["name"], "description": tool.get("description") or "",
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}}}}


class MessageBuilder:
    """The core's chunks in, the Messages API's stream events out (``feed``, ``finish``),
    and the whole message (``result``) built by the same steps."""

    def __init__(self, model: str) -> None:
        self.id = f"msg_{uuid.uuid4().hex[:24]}"
        self.model = model
        self._content: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self._stop_reason: str | None = None
        self._usage = Usage()

    def start(self) -> list[dict[str, Any]]:
        return [{"type": "message_start", "message": self.result()}]

    def feed(self, chunk: Chunk) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if chunk.thinking:
            events += self._append("thinking", chunk.thinking)
        if chunk.text:
            events += self._append("text", chunk.text)
        for call in chunk.tool_calls:
            events += self._close()
            block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}",
                     "name": call.name, "input": call.arguments}
            index = len(self._content)
            self._content.append(block)
            events += [{"type": "content_block_start", "index": index,
                        "content_block": {**block, "input": {}}},
                       {"type": "content_block_delta", "index": index, "delta": {
                           "type": "input_json_delta",
                           "partial_json": json.dumps(call.arguments, ensure_ascii=False)}},
                       {"type": "content_block_stop", "index": index}]
        if chunk.finish_reason is not None:
            self._usage = chunk.usage or Usage()
            self._stop_reason = ("tool_use" if any(b["type"] == "tool_use"
                                                   for b in self._content)
                                 else "max_tokens" if chunk.finish_reason == "length"
                                 else "end_turn")
        return events

    def finish(self) -> list[dict[str, Any]]:
        return [*self._close(),
                {"type": "message_delta",
                 "delta": {"stop_reason": self._stop_reason or "end_turn",
                           "stop_sequence": None},
                 "usage": self._usage_fields()},
                {"type": "message_stop"}]

    def result(self) -> dict[str, Any]:
        """The message as it stands (after ``finish``: the whole answer)."""
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": json.loads(json.dumps(self._content)),
                "stop_reason": self._stop_reason, "stop_sequence": None,
                "usage": self._usage_fields()}

    def _usage_fields(self) -> dict[str, int]:
        usage = self._usage
        return {"input_tokens": usage.prompt_tokens - usage.cached_tokens,
                "cache_read_input_tokens": usage.cached_tokens,
                "cache_creation_input_tokens": 0, "output_tokens": usage.completion_tokens}

    def _append(self, kind: str, text: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if self._open is None or self._open["type"] != kind:
            events += self._close()
            block: dict[str, Any] = {"type": kind, kind: ""}
            if kind == "thinking":
                block["signature"] = ""
            self._open = block
            self._content.append(block)
            events.append({"type": "content_block_start", "index": len(self._content) - 1,
                           "content_block": dict(block)})
        self._open[kind] += text
        return [*events, {"type": "content_block_delta",
                          "index": self._content.index(self._open),
                          "delta": {"type": f"{kind}_delta", kind: text}}]

    def _close(self) -> list[dict[str, Any]]:
        block, self._open = self._open, None
        if block is None:
            return []
        return [{"type": "content_block_stop", "index": self._content.index(block)}]


# -- the client side (backends.remote.anthropic) ------------------------------------------
DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` sent when a request leaves it open: the Messages API requires one."""
THINKING_BUDGET = 1024
"""``thinking.budget_tokens`` for ``think=True``: the API's smallest budget (a local
server ignores it; Anthropic's needs ``max_tokens`` above it)."""
_TOOL_CHOICES = {"auto": {"type": "auto"}, "none": {"type": "none"},
                 "required": {"type": "any"}}


def request_to_wire(model: str, messages: list[ChatMessage], config: GenerationConfig
                    ) -> dict[str, Any]:
    """A streamed Messages request for ``config`` (``MessagesRequest`` reads it back on
    this server): system turns joined into ``system``, tool results as ``tool_result``
    blocks in one user turn, assistant tool calls as ``tool_use`` blocks; earlier turns'
    reasoning is left out (Anthropic's API takes it back only signed)."""
    if config.temperature is not None and config.temperature > 1:
        raise InvalidRequestError(f"temperature={config.temperature:g}: the Messages API "
                                  "takes 0 to 1", param="temperature")
    if config.lora is not None:
        raise InvalidRequestError("the Messages API has no per-request adapters; name a "
                                  "model served with its adapter (adam serve --lora)",
                                  param="lora")
    body: dict[str, Any] = {"model": model, "stream": True,
                            "max_tokens": config.max_tokens or DEFAULT_MAX_TOKENS,
                            "messages": _turns_to_wire(messages)}
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    if system:
        body["system"] = system
    for field, key in (("temperature", "temperature"), ("top_p", "top_p"),
                       ("top_k", "top_k")):
        if getattr(config, field) is not None:
            body[key] = getattr(config, field)
    if config.stop:
        body["stop_sequences"] = list(config.stop)
    if config.tools_active:
        body["tools"] = [{"name": t.name, "description": t.description,
                          "input_schema": dict(t.parameters)} for t in config.tools]
        choice = config.tool_choice or "auto"
        body["tool_choice"] = dict(_TOOL_CHOICES.get(choice) or {"type": "tool",
                                                                 "name": choice})
        if config.parallel_tool_calls is False:
            body["tool_choice"]["disable_parallel_tool_use"] = True
    if config.think is not None:
        body["thinking"] = ({"type": "enabled", "budget_tokens": THINKING_BUDGET}
                            if config.think else {"type": "disabled"})
    output: dict[str, Any] = {}
    if config.reasoning_effort:
        output["effort"] = config.reasoning_effort
    if config.response_format is not None:
        schema = config.response_format.schema
        output["format"] = {"type": "json_schema",
                            "schema": dict(schema) if schema is not None else
                            {"type": "object"}}
    if output:
        body["output_config"] = output
    return body


def _turns_to_wire(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            block = {"type": "tool_result", "tool_use_id": message.tool_call_id or "",
                     "content": message.content}
            if turns and turns[-1]["role"] == "user" and isinstance(
                    turns[-1]["content"], list):
                turns[-1]["content"].append(block)  # the results of one turn's calls
            else:
                turns.append({"role": "user", "content": [block]})
            continue
        if message.role == "assistant" and message.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] \
                if message.content else []
            blocks += [{"type": "tool_use", "id": call.id, "name": call.name,
                        "input": call.arguments} for call in message.tool_calls]
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": message.role, "content": message.content})
    return turns


STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "stop",
                "pause_turn": "stop", "refusal": "stop", "max_tokens": "length",
                "model_context_window_exceeded": "length"}
"""The Messages API's ``stop_reason`` as the core's ``finish_reason``."""


class StreamReader:
    """The Messages API's stream events (as dicts) in, core chunks out: text and
    thinking deltas as they come, each ``tool_use`` block as a whole call when it closes
    (its ``input_json_delta`` pieces joined, checked as every backend checks calls),
    usage from ``message_start`` and ``message_delta``, the finish reason last."""

    def __init__(self, config: GenerationConfig) -> None:
        self._tool_names = config.tool_names
        self._blocks: dict[int, dict[str, Any]] = {}
        self._usage = Usage()
        self._stop: str | None = None

    def feed(self, event: Mapping[str, Any]) -> list[Chunk]:
        kind = event.get("type")
        if kind == "message_start":
            self._read_usage((event.get("message") or {}).get("usage") or {})
        elif kind == "content_block_start":
            block = dict(event.get("content_block") or {})
            self._blocks[int(event.get("index") or 0)] = {**block, "json": ""}
            text = block.get("text") or block.get("thinking")  # a block may start with text
            if text:
                return [Chunk(text=text) if block.get("type") == "text" else
                        Chunk(thinking=text)]
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [Chunk(text=delta["text"])]
            if delta.get("type") == "thinking_delta" and delta.get("thinking"):
                return [Chunk(thinking=delta["thinking"])]
            if delta.get("type") == "input_json_delta":
                self._blocks.setdefault(int(event.get("index") or 0), {"json": ""})[
                    "json"] += delta.get("partial_json") or ""
        elif kind == "content_block_stop":
            block = self._blocks.pop(int(event.get("index") or 0), {})
            if block.get("type") == "tool_use":
                return [self._call(block)]
        elif kind == "message_delta":
            self._stop = (event.get("delta") or {}).get("stop_reason") or self._stop
            self._read_usage(event.get("usage") or {})
        elif kind == "error":
            error = event.get("error") or {}
            raise AdamError(f"the server stopped the answer: {error.get('message') or error}")
        return []

    def finish(self) -> list[Chunk]:
        if self._stop is None:
            raise AdamError("the server ended the stream before the answer finished (no "
                            "stop_reason)")
        return [Chunk(finish_reason=STOP_REASONS.get(self._stop, "stop"), usage=self._usage)]

    def _read_usage(self, usage: Mapping[str, Any]) -> None:
        cached = int(usage.get("cache_read_input_tokens") or 0)
        if usage.get("input_tokens") is not None:
            self._usage.prompt_tokens = int(usage["input_tokens"]) + cached
            self._usage.cached_tokens = cached
        if usage.get("output_tokens") is not None:
            self._usage.completion_tokens = int(usage["output_tokens"])

    def _call(self, block: Mapping[str, Any]) -> Chunk:
        text = block.get("json") or json.dumps(block.get("input") or {})
        try:
            arguments = json.loads(text) if text.strip() else {}
        except ValueError as error:
            return Chunk(invalid_tool_calls=[InvalidToolCall(
                block.get("name"), text, f"the input is not valid JSON: {error}",
                id=block.get("id"))])
        call = tool_call_from_json(json.dumps({"name": block.get("name"),
                                               "arguments": arguments}), self._tool_names)
        for found in (*call.tool_calls, *call.invalid_tool_calls):
            found.id = block.get("id") or found.id
        return call
