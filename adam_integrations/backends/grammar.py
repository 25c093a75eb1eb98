"""Constrained decoding for the transformers backend, with xgrammar.

What the answer must look like is described as an xgrammar *structural tag* (a JSON
description of formats), built from the request:

- ``response_format``: the answer is JSON for the schema (any object for "json");
- a forced ``tool_choice``: one or more ``<tool_call>\\n{"name": ..., "arguments": ...}
  \\n</tool_call>`` blocks whose JSON matches one of the allowed tools' call schemas;
- ``tool_choice="auto"``: free text, but once the model opens ``<tool_call>`` the call
  must be valid JSON for one of the tools;
- a thinking model may think first (``<think>...</think>``) in every case.

Grammars are compiled once per tokenizer and description and kept (``GrammarCache``).
A fresh logits processor per request applies the compiled grammar's token mask.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, Literal

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.output import THINK_CLOSE, THINK_OPEN
from adam_integrations.core.prompt import TemplateTraits
from adam_integrations.core.tools import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    ToolSpec,
    bounded_for_generation,
)
from adam_integrations.core.types import GenerationConfig

ThinkingMode = Literal["none", "optional", "open"]
"""Whether output may start with a think block ("optional"), starts inside one because the
prompt opened it ("open"), or has none."""

def thinking_mode(traits: TemplateTraits, config: GenerationConfig, starts_thinking: bool
                  ) -> ThinkingMode:
    """Where a constrained answer may think: inside a block the prompt opened, in an
    optional block of a thinking template (unless ``think=False``), or nowhere."""
    if starts_thinking:
        return "open"
    if traits.thinking and config.think is not False:
        return "optional"
    return "none"


# A 135M model left free to emit whitespace inside JSON may never stop; two are plenty.
_MAX_JSON_WHITESPACE = 2
_GAP = {"type": "regex", "pattern": "[ \\n]{0,2}"}


def structural_tag(config: GenerationConfig, thinking: ThinkingMode) -> dict[str, Any] | None:
    """The xgrammar structural tag constraining this request, or None for free text."""
    if config.response_format is not None:
        schema = config.response_format.schema or {"type": "object"}
        body: dict[str, Any] = _json(schema)
    elif config.tools_active and config.forced_tools:
        body = {"type": "tags_with_separator", "tags": [_call_tag(config.forced_tools)],
                "separator": "\n", "at_least_one": True,
                "stop_after_first": config.parallel_tool_calls is not True}
    elif config.tools_active:
        body = {"type": "triggered_tags", "triggers": [TOOL_CALL_OPEN],
                "tags": [_call_tag(config.tools)], "at_least_one": False,
                "stop_after_first": config.parallel_tool_calls is False}
    else:
        return None
    if thinking == "optional":
        think = {"type": "tag", "begin": THINK_OPEN, "content": {"type": "any_text"},
                 "end": THINK_CLOSE}
        body = {"type": "sequence",
                "elements": [{"type": "optional", "content": think}, _GAP, body]}
    elif thinking == "open":
        rest = {"type": "tag", "begin": "", "content": {"type": "any_text"}, "end": THINK_CLOSE}
        body = {"type": "sequence", "elements": [rest, _GAP, body]}
    return {"type": "structural_tag", "format": body}


def _json(schema: Any) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": bounded_for_generation(schema),
            "max_whitespace_cnt": _MAX_JSON_WHITESPACE}


def _call_tag(tools: list[ToolSpec]) -> dict[str, Any]:
    schemas = [t.call_schema() for t in tools]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return {"type": "tag", "begin": f"{TOOL_CALL_OPEN}\n", "content": _json(schema),
            "end": f"\n{TOOL_CALL_CLOSE}"}


class GrammarCache:
    """Compiled grammars of one tokenizer, by structural-tag description (LRU)."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int],
                 capacity: int = 64) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._stop_token_ids = stop_token_ids
        self._capacity = capacity
        self._compiler: Any = None
        self._compiled: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.compilations = 0

    def compiled(self, tag: dict[str, Any]) -> Any:
        """The compiled grammar for ``tag``, compiling it on first use."""
        key = json.dumps(tag, sort_keys=True)
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
                return self._compiled[key]
            # Compile the description as written: sorting keys would reorder properties.
            compiled = self._compile(json.dumps(tag))
            self._compiled[key] = compiled
            if len(self._compiled) > self._capacity:
                self._compiled.popitem(last=False)
            return compiled

    def logits_processor(self, tag: dict[str, Any]) -> Any:
        """A fresh (single-use) transformers logits processor enforcing ``tag``."""
        from xgrammar.contrib.hf import LogitsProcessor

        return LogitsProcessor(self.compiled(tag))

    def _compile(self, description: str) -> Any:
        import xgrammar

        if self._compiler is None:
            info = xgrammar.TokenizerInfo.from_huggingface(
                self._tokenizer, vocab_size=self._vocab_size,
                stop_token_ids=self._stop_token_ids)
            self._compiler = xgrammar.GrammarCompiler(info, max_threads=2)
        try:
            compiled = self._compiler.compile_structural_tag(description)
        except (RuntimeError, ValueError) as error:
            raise InvalidRequestError(
                f"this schema cannot be turned into a grammar: {error}. Simplify the schema "
                "(e.g. drop unsupported keywords) or use response_format='json'"
            ) from error
        self.compilations += 1
        return compiled
