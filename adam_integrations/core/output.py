"""Split raw model output into reasoning, answer text and tool calls, while streaming.

Local backends produce one text stream; this parser turns it into ``Chunk`` pieces:

- ``<think>...</think>`` becomes ``thinking`` (never answer text). A tag may arrive split
  over any number of pieces; a missing closing tag (``max_tokens`` hit while thinking)
  leaves everything after ``<think>`` as thinking; no think block is fine. Prompts that
  already open the think block (some templates end the generation prompt with
  ``<think>``) start the parser inside it.
- ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks (Qwen2.5/Qwen3/Hermes)
  and ``<tool_call><function=NAME><parameter=KEY>VALUE</parameter></function></tool_call>``
  blocks (the XML form Qwen3-Coder, Qwen3.5 and 3.6 are trained on; a value that reads as
  JSON other than a string, such as ``3`` or ``[1, 2]``, is taken as that value, anything
  else as text) become ``ToolCall``s with fresh ids, emitted as soon as each block closes;
  several per turn.
  A block that does not parse, or names an unknown tool, becomes an ``InvalidToolCall``
  next to the text: never an exception.
- When a tool call was forced, a bare JSON object answer is read as the call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from adam_integrations.core.tools import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, new_tool_call_id
from adam_integrations.core.types import Chunk, InvalidToolCall, ToolCall

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

_ANSWER, _THINK, _TOOL = "answer", "thinking", "tool"


class ResponseParser:
    """Incremental parser: ``push`` raw text pieces, then ``finish`` once.

    Example:
        >>> parser = ResponseParser()
        >>> [c.thinking or c.text for c in parser.push("<thi")]
        []
        >>> [(c.thinking, c.text) for c in parser.push("nk>hmm</think>\\n\\nHi")]
        [('hmm', ''), ('', 'Hi')]
    """

    def __init__(
        self,
        *,
        tool_names: Sequence[str] = (),
        parse_tool_calls: bool = False,
        starts_in_thinking: bool = False,
        forced_tool_call: bool = False,
    ) -> None:
        self._tool_names = list(tool_names)
        self._parse_tools = parse_tool_calls
        self._forced = forced_tool_call
        self._state = _THINK if starts_in_thinking else _ANSWER
        self._held = ""
        self._tool_body: list[str] = []
        self._strip_answer_start = False
        self._answer_text: list[str] = []
        self._calls_seen = 0

    @property
    def in_thinking(self) -> bool:
        """Whether the text pushed last was inside a think block."""
        return self._state == _THINK

    def push(self, text: str) -> list[Chunk]:
        """Feed raw text; return the pieces that are certain now."""
        out: list[Chunk] = []
        buffer = self._held + text
        self._held = ""
        while buffer:
            closing = {_ANSWER: self._answer_tags(), _THINK: [THINK_CLOSE],
                       _TOOL: [TOOL_CALL_CLOSE]}[self._state]
            index, tag = _find_first(buffer, closing)
            if tag is None:
                keep = _partial_tag_suffix(buffer, closing)
                self._emit(out, buffer[: len(buffer) - keep])
                self._held = buffer[len(buffer) - keep:]
                break
            self._emit(out, buffer[:index])
            buffer = buffer[index + len(tag):]
            self._switch(out, tag)
        return out

    def finish(self) -> list[Chunk]:
        """End of output: flush held text, close what was left open."""
        out: list[Chunk] = []
        held, self._held = self._held, ""
        self._emit(out, held)
        if self._state == _TOOL:
            out.append(self._tool_call_from("".join(self._tool_body), unterminated=True))
            self._tool_body = []
        if self._forced and self._calls_seen == 0:
            answer = "".join(self._answer_text).strip()
            if answer.startswith("{"):
                call = self._tool_call_from(answer)
                if call.tool_calls:
                    out.append(call)
        return out

    # -- internals -------------------------------------------------------------------
    def _answer_tags(self) -> list[str]:
        return [THINK_OPEN, TOOL_CALL_OPEN] if self._parse_tools else [THINK_OPEN]

    def _emit(self, out: list[Chunk], text: str) -> None:
        if not text:
            return
        if self._state == _TOOL:
            self._tool_body.append(text)
        elif self._state == _THINK:
            out.append(Chunk(thinking=text))
        else:
            if self._strip_answer_start:
                text = text.lstrip()
                if not text:
                    return
                self._strip_answer_start = False
            self._answer_text.append(text)
            out.append(Chunk(text=text))

    def _switch(self, out: list[Chunk], tag: str) -> None:
        if tag == THINK_OPEN:
            self._state = _THINK
        elif tag == THINK_CLOSE:
            self._state = _ANSWER
            self._strip_answer_start = True  # "</think>\n\n" precedes the answer
        elif tag == TOOL_CALL_OPEN:
            self._state = _TOOL
        else:
            out.append(self._tool_call_from("".join(self._tool_body)))
            self._tool_body = []
            self._state = _ANSWER
            self._strip_answer_start = True

    def _tool_call_from(self, body: str, *, unterminated: bool = False) -> Chunk:
        self._calls_seen += 1
        if unterminated:
            return _invalid(body.strip(), new_tool_call_id(),
                            f"the tool call was cut off before {TOOL_CALL_CLOSE}")
        return tool_call_from_json(body, self._tool_names)


_XML_FUNCTION = re.compile(r"<function=([^>\n]+)>(.*?)(?:</function>|$)", re.DOTALL)
_XML_PARAMETER = re.compile(r"<parameter=([^>\n]+)>\n?(.*?)\n?</parameter>", re.DOTALL)


def tool_call_from_json(body: str, tool_names: Sequence[str] = ()) -> Chunk:
    """A chunk with the call ``body`` (``{"name": ..., "arguments": {...}}``, or the XML
    form ``<function=NAME><parameter=KEY>VALUE</parameter></function>``) writes, or with
    an invalid call saying what is wrong with it (never an exception).

    Example:
        >>> call = tool_call_from_json("<function=add>\n<parameter=a>\n2\n</parameter>\n"
        ...                            "<parameter=note>\nsum it\n</parameter>\n</function>")
        >>> call.tool_calls[0].name, call.tool_calls[0].arguments
        ('add', {'a': 2, 'note': 'sum it'})
    """
    raw = body.strip()
    call_id = new_tool_call_id()
    if raw.startswith("<function="):
        return _xml_tool_call(raw, call_id, tool_names)
    try:
        data = json.loads(raw)
    except ValueError as error:
        return _invalid(raw, call_id, f"the tool call is not valid JSON: {error}")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return _invalid(raw, call_id, 'a tool call must be {"name": ..., "arguments": {...}}')
    name = data["name"]
    arguments: Any = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError as error:
            return _invalid(raw, call_id, f"the arguments are not valid JSON: {error}", name)
    if not isinstance(arguments, dict):
        return _invalid(raw, call_id, "the arguments must be a JSON object", name)
    if tool_names and name not in tool_names:
        known = ", ".join(tool_names)
        return _invalid(raw, call_id, f"unknown tool {name!r}; the tools are: {known}", name)
    return Chunk(tool_calls=[ToolCall(name=name, arguments=arguments, id=call_id)])


def _xml_tool_call(raw: str, call_id: str, tool_names: Sequence[str]) -> Chunk:
    match = _XML_FUNCTION.match(raw)
    if match is None or not match.group(0).endswith("</function>"):
        return _invalid(raw, call_id, "the tool call must be <function=NAME>"
                        "<parameter=KEY>VALUE</parameter>...</function>",
                        match.group(1).strip() if match else None)
    name, inner = match.group(1).strip(), match.group(2)
    arguments = {key.strip(): _xml_value(value)
                 for key, value in _XML_PARAMETER.findall(inner)}
    if tool_names and name not in tool_names:
        known = ", ".join(tool_names)
        return _invalid(raw, call_id, f"unknown tool {name!r}; the tools are: {known}", name)
    return Chunk(tool_calls=[ToolCall(name=name, arguments=arguments, id=call_id)])


def _xml_value(text: str) -> Any:
    """A parameter's text as the value it spells: JSON other than a string, else text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return text if isinstance(value, str) else value


def _invalid(raw: str, call_id: str, error: str, name: str | None = None) -> Chunk:
    if name is None:
        match = re.search(r'"name"\s*:\s*"([^"]*)"', raw)
        name = match.group(1) if match else None
    return Chunk(invalid_tool_calls=[InvalidToolCall(name=name, arguments=raw, error=error,
                                                     id=call_id)])


def _find_first(buffer: str, tags: Sequence[str]) -> tuple[int, str | None]:
    best, found = len(buffer), None
    for tag in tags:
        index = buffer.find(tag)
        if 0 <= index < best:
            best, found = index, tag
    return best, found


def _partial_tag_suffix(buffer: str, tags: Sequence[str]) -> int:
    """Length of the longest end of ``buffer`` that could be the start of a tag."""
    for length in range(min(len(buffer), max(len(t) for t in tags) - 1), 0, -1):
        tail = buffer[-length:]
        if any(t.startswith(tail) for t in tags):
            return length
    return 0


def merge_chunks(chunks: Sequence[Chunk]) -> Chunk:
    """One chunk with the text, thinking and calls of several (for a token's pieces)."""
    merged = Chunk()
    for chunk in chunks:
        merged.text += chunk.text
        merged.thinking += chunk.thinking
        merged.tool_calls.extend(chunk.tool_calls)
        merged.invalid_tool_calls.extend(chunk.invalid_tool_calls)
    return merged


def split_thinking(content: str) -> tuple[str, str]:
    """An assistant answer written with its think block inline, as (reasoning, answer).

    Example:
        >>> split_thinking("<think>\nsum it\n</think>\n\n4")
        ('sum it', '4')
    """
    if THINK_CLOSE not in content:
        return "", content
    before, _, after = content.partition(THINK_CLOSE)
    return before.split(THINK_OPEN)[-1].strip("\n"), after.lstrip()
