"""The OpenAI chat-completions and embeddings wire format, in one place: what ``adam
serve``'s ``/v1`` routes read and answer (and what an OpenAI-compatible client backend
sends and reads).

Messages accept what clients send: string or text-part content, ``developer`` as
``system``, assistant ``tool_calls`` with JSON-string (or object) arguments. Reasoning
goes out as ``reasoning_content`` next to ``content``, never inside it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.types import ChatMessage, GenerationConfig, ToolCall, Usage

FINISH_REASONS = {"stop": "stop", "length": "length", "cancelled": "stop"}


def messages_from_wire(raw: Any) -> list[ChatMessage]:
    """OpenAI chat messages as core messages (``ChatMessage.coerce`` reads OpenAI's
    shapes: text parts, ``developer``, JSON-string tool arguments, reasoning)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidRequestError("messages must be a non-empty list")
    return [ChatMessage.coerce(item) for item in raw]


def config_from_request(body: dict[str, Any]) -> GenerationConfig:
    """The sampling, tools, ``response_format`` and reasoning fields as a GenerationConfig."""
    fields: dict[str, Any] = {}
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        fields["max_tokens"] = limit
    for key in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty",
                "stop", "parallel_tool_calls"):
        if body.get(key) is not None:
            fields[key] = body[key]
    if body.get("tools"):
        fields["tools"] = body["tools"]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        function = choice.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequestError("a named tool_choice is {\"type\": \"function\", "
                                      "\"function\": {\"name\": \"<tool>\"}}")
        choice = function["name"]
    if choice is not None:
        fields["tool_choice"] = choice
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "text":
        fmt = None
    if fmt is not None:
        fields["response_format"] = "json" if fmt == {"type": "json_object"} else fmt
    effort = body.get("reasoning_effort")
    if effort is not None:
        fields["think"] = effort != "none"
    return GenerationConfig(**fields)


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
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}
