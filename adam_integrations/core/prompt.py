"""Turn a conversation and its options into what a Jinja chat template reads.

Shared by the in-process backends (transformers, llama.cpp), which both render the
model's own chat template:

- an assistant turn's reasoning (``thinking``, or a think block inline in its content)
  goes to templates that read ``reasoning_content`` (Qwen3's keeps it inside the current
  tool loop and drops it before the last user query, its ``last_query_index`` rule);
  for other templates it is left out (Qwen's advice: thinking stays out of the history);
- tools go through the template's own tool support when it has one, else into a clear
  generic system prompt (``core.tools.generic_tool_prompt``);
- ``think`` reaches templates that know ``enable_thinking``, a level (``reasoning_effort``)
  those that read ``reasoning_effort`` and name that level (elsewhere a level means
  thinking on, as Ollama's ``ThinkValue`` and OpenAI's engines take it),
  ``preserve_thinking`` those that have the switch (Qwen3.6); asking a model for what its
  template cannot do (to think, a level its level list lacks, to keep earlier reasoning)
  is an error before anything is generated, naming what it can do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from adam_integrations.core.errors import InvalidRequestError, UnsupportedOperationError
from adam_integrations.core.output import THINK_OPEN, split_thinking
from adam_integrations.core.tools import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, generic_tool_prompt
from adam_integrations.core.types import THINKING_LEVELS, ChatMessage, GenerationConfig

LEVEL_NOT_HONOURED = "a level (think: \"low\", reasoning_effort) turns thinking on, at the " \
    "model's one level"
"""What a level does on a model without levels, as Ollama and OpenAI's engines take it."""


@dataclass(frozen=True)
class TemplateTraits:
    """What a chat template can do, read from its source text."""

    tools: bool
    thinking: bool
    thinking_switch: bool
    reasoning_history: bool = False
    effort_levels: tuple[str, ...] = ()
    """The ``reasoning_effort`` levels the template takes: those it names, or every level
    when it reads the variable without naming any (gpt-oss's prints it as given)."""
    preserve_switch: bool = False  # the template reads preserve_thinking (Qwen3.6)

    @property
    def thinking_control(self) -> str | None:
        """How thinking is set for this template: by level, on/off, always on, or not."""
        if self.effort_levels:
            return f"reasoning_effort ({', '.join(self.effort_levels)})"
        if self.thinking_switch:
            return f"on/off (enable_thinking); {LEVEL_NOT_HONOURED}"
        return f"always on; {LEVEL_NOT_HONOURED}" if self.thinking else None

    @classmethod
    def of(cls, template: str | None) -> TemplateTraits:
        source = template or ""
        levels: tuple[str, ...] = ()
        if "reasoning_effort" in source:
            named = tuple(level for level in THINKING_LEVELS
                          if f"'{level}'" in source or f'"{level}"' in source)
            levels = named or THINKING_LEVELS
        return cls(
            tools="tools" in source,
            thinking=THINK_OPEN in source or "enable_thinking" in source,
            thinking_switch="enable_thinking" in source,
            reasoning_history="reasoning_content" in source,
            effort_levels=levels,
            preserve_switch="preserve_thinking" in source,
        )


FIM_MARKERS: tuple[tuple[str, str, str], ...] = (
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5/Qwen3-Coder
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder
    ("<|fim▁begin|>", "<|fim▁hole|>", "<|fim▁end|>"),  # DeepSeek-Coder
)
"""Fill-in-the-middle tokens (prefix, suffix, middle) as code models spell them: the
prompt is ``prefix-token prompt suffix-token suffix middle-token``, and the model writes
what goes between."""


def insert_unsupported(model_name: str) -> UnsupportedOperationError:
    """Ollama's error for a suffix sent to a model without fill-in-the-middle tokens."""
    return UnsupportedOperationError(
        f'"{model_name}" does not support insert: its vocabulary has no fill-in-the-middle '
        "tokens (such as <|fim_prefix|>); send the prompt without a suffix, or use a code "
        "model such as Qwen3-Coder")


def template_inputs(
    messages: list[ChatMessage], config: GenerationConfig, traits: TemplateTraits,
    model_name: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The message dicts and the extra template variables for one request."""
    if config.think is True and not traits.thinking:
        raise InvalidRequestError(
            f'"{model_name}" does not support thinking (its chat template has no thinking '
            'support); drop think=True or use a thinking model such as Qwen3'
        )
    _check_thinking_options(config, traits, model_name)
    dicts = [_template_dict(m, traits) for m in messages]
    if not traits.tools:
        dicts = _tool_turns_as_text(dicts)
    variables: dict[str, Any] = {}
    if config.tools_active:
        if traits.tools:
            variables["tools"] = [t.to_openai() for t in config.tools]
        else:
            dicts = _with_system_text(dicts, generic_tool_prompt(config.tools,
                                                                 config.tool_choice))
    if config.think is not None and traits.thinking_switch:
        variables["enable_thinking"] = config.think
    if config.reasoning_effort and traits.effort_levels:
        variables["reasoning_effort"] = config.reasoning_effort  # else: thinking on, no level
    if config.preserve_thinking is not None:
        variables["preserve_thinking"] = config.preserve_thinking
    return dicts, variables


def _check_thinking_options(config: GenerationConfig, traits: TemplateTraits,
                            model_name: str) -> None:
    """A thinking level or ``preserve_thinking`` the template cannot take is an error."""
    level = config.reasoning_effort
    if level and traits.effort_levels and level not in traits.effort_levels:
        raise InvalidRequestError(
            f'"{model_name}" takes the levels {", ".join(traits.effort_levels)}, not the '
            f"level {level!r} (reasoning_effort)")
    if config.preserve_thinking is not None and not traits.preserve_switch:
        raise InvalidRequestError(
            f'"{model_name}" has no preserve_thinking switch in its chat template (Qwen3.6 '
            "has one); leave preserve_thinking out")

def _template_dict(message: ChatMessage, traits: TemplateTraits) -> dict[str, Any]:
    out = message.to_template_dict()
    if message.role == "assistant":
        inline, out["content"] = split_thinking(message.content)
        reasoning = message.thinking or inline
        if traits.reasoning_history and reasoning:
            out["reasoning_content"] = reasoning
    return out


def _tool_turns_as_text(dicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For templates that ignore tool calls and the tool role: write calls into the
    assistant's text and tool results into one user turn, in the format the generic tool
    prompt asks for (as Qwen's own template renders them)."""
    out: list[dict[str, Any]] = []
    for message in dicts:
        if message["role"] == "assistant" and message.get("tool_calls"):
            calls = "\n".join(
                f"{TOOL_CALL_OPEN}\n" + json.dumps({"name": c["function"]["name"],
                                                   "arguments": c["function"]["arguments"]},
                                                  ensure_ascii=False) + f"\n{TOOL_CALL_CLOSE}"
                for c in message["tool_calls"])
            text = "\n".join(part for part in (message["content"], calls) if part)
            out.append({"role": "assistant", "content": text})
        elif message["role"] == "tool":
            response = f"<tool_response>\n{message['content']}\n</tool_response>"
            if out and out[-1].get("from_tools"):
                out[-1]["content"] += "\n" + response
            else:
                out.append({"role": "user", "content": response, "from_tools": True})
        else:
            out.append(message)
    for message in out:
        message.pop("from_tools", None)
    return out


def _with_system_text(dicts: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    if dicts and dicts[0]["role"] == "system":
        first = {**dicts[0], "content": f"{dicts[0]['content']}\n\n{text}".strip()}
        return [first, *dicts[1:]]
    return [{"role": "system", "content": text}, *dicts]


def opens_thinking(prompt: str) -> bool:
    """Whether the rendered prompt ends inside an opened think block."""
    return prompt.rstrip().endswith(THINK_OPEN)
