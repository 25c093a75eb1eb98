"""OpenAI's Responses API (``POST /v1/responses``), stateless, as Ollama serves it: what
``adam serve`` reads and answers, so tools built on ``client.responses.create`` run on
local models.

- requests: ``instructions`` and ``input`` (a text, or items: messages with text parts,
  ``function_call`` and ``function_call_output`` items of a tool loop, ``reasoning``
  items) -> core messages; ``tools`` (flat function tools), ``tool_choice``, ``text.format``
  (``json_schema`` / ``json_object``), ``reasoning.effort``, ``max_output_tokens``,
  sampling -> a ``GenerationConfig``. Nothing is stored: ``previous_response_id`` and
  ``store: true`` are refused, as are inputs this server cannot read (images, files);
- answers: ``ResponseBuilder`` turns the core's chunks into the stream's events
  (``response.created`` ... ``response.output_text.delta`` ... ``response.completed``);
  the non-streamed answer is the final response of the same events, collected.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    GenerationConfig,
    ToolCall,
    Usage,
)
from adam_integrations.wire.request import (
    ReasoningEffort,
    RequestPart,
    Role,
    ToolFunction,
    ToolName,
    WireRequest,
    exactly,
    ranged,
)

_TEXT_PARTS = ("input_text", "output_text", "text")


class ContentPart(RequestPart):
    """A part of an item's content."""

    type: Annotated[Literal[(*_TEXT_PARTS, "reasoning_text", "summary_text")],
                    Field(description="text parts only (no images or files: no vision "
                                      "model is served)")]
    text: str | None = None


_Content = str | list[ContentPart] | None


class MessageItem(RequestPart):
    """A message."""

    type: Literal["message"] | None = None
    role: Role
    content: _Content = None


class FunctionCallItem(RequestPart):
    """A function call of an earlier answer."""

    type: Literal["function_call"]
    call_id: str | None = None
    name: str = Field(min_length=1)
    arguments: str | dict[str, Any] | None = None


class FunctionCallOutputItem(RequestPart):
    """A function call's result."""

    type: Literal["function_call_output"]
    call_id: str | None = None
    output: _Content = None


class ReasoningItem(RequestPart):
    """The model's reasoning in an earlier answer."""

    type: Literal["reasoning"]
    content: _Content = None
    summary: _Content = None


def _not_only_reasoning(items: list[Any]) -> list[Any]:
    if all(isinstance(item, ReasoningItem) for item in items):
        raise ValueError("input needs an item that is not reasoning")
    return items


_Items = Annotated[
    list[MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem],
    Field(min_length=1, json_schema_extra={"contains": {"not": {
        "type": "object", "required": ["type"],
        "properties": {"type": {"const": "reasoning"}}}}}),
    AfterValidator(_not_only_reasoning)]


class FunctionTool(ToolFunction):
    """A function tool, flat as the Responses API takes it: the function's fields next to
    its type."""

    type: Literal["function"]


class FunctionChoice(RequestPart):
    """``tool_choice``: this function."""

    type: Literal["function"]
    name: ToolName


class PlainFormat(RequestPart):
    """``text.format``: text, or any JSON object."""

    type: Literal["text", "json_object"]


class SchemaFormat(RequestPart):
    """``text.format``: JSON following a schema."""

    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")
    name: str | None = None
    strict: bool | None = None


class TextSetting(RequestPart):
    """``text``."""

    described = "format: json_schema, json_object or text"
    format: PlainFormat | SchemaFormat | None = None


class ReasoningSetting(RequestPart):
    """``reasoning``."""

    described = "effort: none, minimal, low, medium, high"
    effort: ReasoningEffort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class ResponsesRequest(WireRequest):
    """``POST /v1/responses`` (stateless)."""

    model: str
    input: str | _Items = Field(description="a text, or input items (messages, "
                                            "function_call, function_call_output, "
                                            "reasoning)")
    instructions: str | None = None
    tools: list[FunctionTool] | None = Field(
        None, description="function tools (built-in tools such as web search run on "
                          "OpenAI's servers)")
    tool_choice: Literal["auto", "none", "required"] | FunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextSetting | None = None
    reasoning: ReasoningSetting | None = None
    max_output_tokens: ranged("max_tokens") = None  # type: ignore[valid-type]
    temperature: ranged("temperature") = None  # type: ignore[valid-type]
    top_p: ranged("top_p") = None  # type: ignore[valid-type]
    stream: bool | None = None
    store: exactly(False) = Field(  # type: ignore[valid-type]
        None, description="nothing is stored: false or left out")
    previous_response_id: None = Field(None, description="stateless: send the whole "
                                                          "conversation in input")
    metadata: dict[str, str] | None = Field(None, description="string values, echoed")
    user: str | None = None

    def conversation(self) -> list[ChatMessage]:
        """The instructions and the input as the core's messages."""
        items = self.input if isinstance(self.input, str) else [
            item.plain() for item in self.input]
        return _messages(items, self.instructions)

    def to_config(self) -> GenerationConfig:
        """The request's settings as a GenerationConfig."""
        fields: dict[str, Any] = {}
        for key, name in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"),
                          ("top_p", "top_p"), ("parallel_tool_calls", "parallel_tool_calls")):
            if getattr(self, key) is not None:
                fields[name] = getattr(self, key)
        tools = [_tool(tool.plain()) for tool in self.tools or []]
        if tools:
            fields["tools"] = tools
        if self.tool_choice is not None:  # read by core.tools.coerce_tool_choice
            fields["tool_choice"] = (self.tool_choice if isinstance(self.tool_choice, str)
                                     else self.tool_choice.plain())
        fmt = self.text.format if self.text else None
        if fmt is not None and fmt.type == "json_schema":
            fields["response_format"] = fmt.schema_
        elif fmt is not None and fmt.type == "json_object":
            fields["response_format"] = "json"
        effort = self.reasoning.effort if self.reasoning else None
        if effort is not None:  # a level is kept (GenerationConfig); minimal is off here
            fields["think"] = effort not in ("none", "minimal") and effort
        return GenerationConfig(**fields)


def _messages(items: Any, instructions: Any) -> list[ChatMessage]:
    messages = [ChatMessage("system", instructions)] if instructions else []
    if isinstance(items, str):
        return [*messages, ChatMessage("user", items)]
    if not items:
        raise InvalidRequestError("input is required: a text, or a list of input items",
                                  param="input")
    reasoning = ""
    names: dict[str, str] = {}  # call id -> tool name, for the outputs
    for item in items:
        if not isinstance(item, Mapping):
            raise InvalidRequestError("each input item must be an object", param="input")
        kind = item.get("type") or "message"
        if kind == "message":
            role = item.get("role")
            message = ChatMessage.coerce({"role": "system" if role == "developer" else role,
                                          "content": _text(item.get("content"))})
            if message.role == "assistant" and reasoning:
                message.thinking, reasoning = reasoning, ""
            messages.append(message)
        elif kind == "function_call":
            call = ToolCall.coerce({"id": item.get("call_id"), "function": {
                "name": item.get("name"), "arguments": item.get("arguments")}})
            names[call.id] = call.name
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant" and (last.tool_calls
                                                                  or not last.content):
                last.tool_calls.append(call)
            else:
                messages.append(ChatMessage("assistant", "", tool_calls=[call],
                                            thinking=reasoning or None))
                reasoning = ""
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append(ChatMessage(
                "tool", output if isinstance(output, str) else _text(output),
                tool_call_id=str(item.get("call_id") or ""),
                name=names.get(str(item.get("call_id") or ""))))
        elif kind == "reasoning":
            reasoning += _text(item.get("content") or item.get("summary") or [])
        else:
            raise InvalidRequestError(f"input items of type {kind!r} are not supported here "
                                      "(messages, function_call, function_call_output and "
                                      "reasoning are)", param="input")
    return messages


def _text(content: Any) -> str:
    """A message's content: a text, or its text parts joined (images and files refused)."""
    if isinstance(content, str) or content is None:
        return content or ""
    if not isinstance(content, list):
        raise InvalidRequestError("message content must be a text or a list of parts",
                                  param="input")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in (*_TEXT_PARTS, "reasoning_text", "summary_text"):
            texts.append(str(part.get("text") or ""))
        else:
            raise InvalidRequestError(f"content parts of type {kind!r} are not supported: "
                                      "no vision model is served; send text", param="input")
    return "".join(texts)


def _tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, Mapping) else type(tool).__name__
        raise InvalidRequestError(f"only function tools are supported, got {kind!r} (built-in "
                                  "tools such as web search run on OpenAI's servers)",
                                  param="tools")
    return {"type": "function", "function": {key: tool[key] for key in (
        "name", "description", "parameters") if tool.get(key) is not None}}


class ResponseBuilder:
    """The core's chunks in, the Responses API's stream events out (``feed``, ``finish``),
    and the whole response (``result``) built by the same steps."""

    def __init__(self, model: str, request: Mapping[str, Any]) -> None:
        self.id = f"resp_{uuid.uuid4().hex}"
        self.model = model
        self._request = request
        self._created = int(time.time())
        self._sequence = 0
        self._output: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None  # the item text or reasoning goes into
        self._status = "in_progress"
        self._usage: Usage | None = None
        self._incomplete: dict[str, str] | None = None

    def start(self) -> list[dict[str, Any]]:
        return [self._event("response.created", response=self.result()),
                self._event("response.in_progress", response=self.result())]

    def feed(self, chunk: Chunk) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if chunk.thinking:
            events += self._append("reasoning", "reasoning_text", chunk.thinking)
        if chunk.text:
            events += self._append("message", "output_text", chunk.text)
        for call in chunk.tool_calls:
            events += self._close()
            item = {"type": "function_call", "id": f"fc_{uuid.uuid4().hex[:24]}",
                    "call_id": call.id or f"call_{uuid.uuid4().hex[:24]}", "name": call.name,
                    "arguments": json.dumps(call.arguments, ensure_ascii=False),
                    "status": "completed"}
            index = len(self._output)
            self._output.append(item)
            events += [self._event("response.output_item.added", output_index=index,
                                   item={**item, "arguments": "", "status": "in_progress"}),
                       self._event("response.function_call_arguments.delta",
                                   item_id=item["id"], output_index=index,
                                   delta=item["arguments"]),
                       self._event("response.function_call_arguments.done",
                                   item_id=item["id"], output_index=index,
                                   arguments=item["arguments"], name=call.name),
                       self._event("response.output_item.done", output_index=index,
                                   item=item)]
        if chunk.finish_reason is not None:
            self._usage = chunk.usage
            if chunk.finish_reason == "length":
                self._incomplete = {"reason": "max_output_tokens"}
        return events

    def finish(self) -> list[dict[str, Any]]:
        events = self._close()
        self._status = "incomplete" if self._incomplete else "completed"
        return [*events, self._event(f"response.{self._status}", response=self.result())]

    def result(self) -> dict[str, Any]:
        """The response as it stands (after ``finish``: the whole answer)."""
        request = self._request
        usage = self._usage or Usage()

        def given(key: str, default: Any) -> Any:  # a null sent is the field left out
            value = request.get(key)
            return default if value is None else value

        return {
            "id": self.id, "object": "response", "created_at": self._created,
            "status": self._status, "model": self.model, "output": list(self._output),
            "error": None, "incomplete_details": self._incomplete,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "parallel_tool_calls": given("parallel_tool_calls", True),
            "temperature": request.get("temperature"), "top_p": request.get("top_p"),
            "tool_choice": given("tool_choice", "auto"),
            "tools": request.get("tools") or [], "text": _echoed_text(request.get("text")),
            "reasoning": request.get("reasoning"), "metadata": request.get("metadata") or {},
            "store": False,
            "usage": {"input_tokens": usage.prompt_tokens,
                      "input_tokens_details": {"cached_tokens": usage.cached_tokens,
                                               "cache_write_tokens": 0},
                      "output_tokens": usage.completion_tokens,
                      "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
                      "total_tokens": usage.total_tokens} if self._usage else None,
        }

    def _append(self, kind: str, part: str, text: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if self._open is None or self._open["type"] != kind:
            events += self._close()
            prefix = "rs" if kind == "reasoning" else "msg"
            item: dict[str, Any] = {"type": kind, "id": f"{prefix}_{uuid.uuid4().hex[:24]}",
                                    "status": "in_progress",
                                    "content": [{"type": part, "text": ""}]}
            if kind == "message":
                item["role"] = "assistant"
                item["content"][0].update(annotations=[], logprobs=[])
            else:
                item["summary"] = []
            self._open = item
            self._output.append(item)
            index = len(self._output) - 1
            events += [self._event("response.output_item.added", output_index=index,
                                   item=_copy(item)),
                       self._event("response.content_part.added", item_id=item["id"],
                                   output_index=index, content_index=0,
                                   part=_copy(item["content"][0]))]
        item = self._open
        item["content"][0]["text"] += text
        delta = {"type": f"response.{part}.delta", "item_id": item["id"],
                 "output_index": self._output.index(item), "content_index": 0, "delta": text}
        if kind == "message":
            delta["logprobs"] = []
        return [*events, self._event(delta.pop("type"), **delta)]

    def _close(self) -> list[dict[str, Any]]:
        item, self._open = self._open, None
        if item is None:
            return []
        item["status"] = "completed"
        index, part = self._output.index(item), item["content"][0]
        done = {"logprobs": []} if item["type"] == "message" else {}  # as the deltas'
        return [self._event(f"response.{part['type']}.done", item_id=item["id"],
                            output_index=index, content_index=0, text=part["text"], **done),
                self._event("response.content_part.done", item_id=item["id"],
                            output_index=index, content_index=0, part=_copy(part)),
                self._event("response.output_item.done", output_index=index,
                            item=_copy(item))]

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._sequence += 1
        return {"type": kind, "sequence_number": self._sequence, **fields}


def _echoed_text(text: dict[str, Any] | None) -> dict[str, Any]:
    """The request's ``text`` as a response echoes it: the format named (the SDK's type
    requires a json_schema format's ``name``, which a request may leave out)."""
    fmt = (text or {}).get("format") or {"type": "text"}
    if fmt.get("type") == "json_schema" and not fmt.get("name"):
        fmt = {**fmt, "name": "response"}
    return {**(text or {}), "format": fmt}


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))
