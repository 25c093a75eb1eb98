"""Constrained decoding for the llama.cpp backend: a plan of grammar phases per request.

The same cases as the transformers backend's structural tags (``backends.grammar``),
as llama.cpp grammars (GBNF):

- ``response_format``: the answer is JSON for the schema (any object for "json");
- a forced ``tool_choice``: one ``<tool_call>\n{...}\n</tool_call>`` block (several
  when ``parallel_tool_calls=True``) whose JSON matches one of the allowed tools;
- ``tool_choice="auto"``: free text, but once the model writes ``<tool_call>`` the call
  must be valid JSON for one of the tools;
- a thinking model may think first (``<think>...</think>``), and a prompt that opened the
  think block lets the model finish it, in every case.

llama-cpp-python checks a grammar against every candidate token at every step, which
halves the speed of free text (measured: 65 vs 130-154 tok/s on SmolLM2 with a grammar
that only watches for ``<tool_call>``). So free text runs with no grammar at all, and a
request becomes a ``Plan``: phases that each end at a marker (``</think>``,
``<tool_call>``), with a grammar only where the output must have a form. The backend
switches phase when the marker appears, reusing the evaluated tokens (what llama.cpp's
server calls a lazy grammar).

JSON schemas become GBNF through llama-cpp-python's converter (``schema_rules``). Rules
written here are named ``adam-*`` so they never collide with the converter's rules, which
are named after the schema's properties.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from adam_integrations.backends.grammar import ThinkingMode
from adam_integrations.core.output import THINK_CLOSE, THINK_OPEN
from adam_integrations.core.tools import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    ToolSpec,
    bounded_for_generation,
)
from adam_integrations.core.types import GenerationConfig

_GAP = 'adam-gap ::= ([ \\n] [ \\n]?)?'  # up to two spaces or newlines


@dataclass(frozen=True)
class Phase:
    """One stretch of output: constrained by ``grammar`` (None = free text), ended by
    the first ``until`` marker in it (None = ends with the answer)."""


    grammar: str | None
    until: str | None = None
    required: bool = False
    """The marker must come: when the model ends its turn first, the marker is written
    for it and the next phase runs (a think block closed for a model that stopped
    thinking without answering, as the Qwen team's thinking budget does)."""


@dataclass(frozen=True)
class Plan:
    """The phases of one answer; after the last phase's marker, generation goes on from
    phase ``loop_from`` (None: the answer ends there)."""

    phases: tuple[Phase, ...]
    loop_from: int | None = None


def request_plan(config: GenerationConfig, thinking: ThinkingMode) -> Plan | None:
    """The grammar phases for this request, or None for free text throughout.

    Example:
        >>> plan = request_plan(GenerationConfig(tools=[{"name": "now"}]), "none")
        >>> plan.phases[0], plan.loop_from      # free text until the model opens a call
        (Phase(grammar=None, until='<tool_call>', required=False), 0)
        >>> plan.phases[1].grammar.startswith("root ::= adam-gap adam-call")  # then a call
        True
    """
    if config.response_format is not None:
        schema = config.response_format.schema or {"type": "object"}
        body = ("adam-answer", schema_rules(schema, "adam-answer"))
    elif config.tools_active and config.forced_tools:
        more = ' ("\\n" adam-call-block)*' if config.parallel_tool_calls is True else ""
        body = ("adam-calls", [f"adam-calls ::= adam-call-block{more}",
                               *_call_block(config.forced_tools)])
    elif config.tools_active:
        call = _grammar(f'adam-gap adam-call {json.dumps(chr(10) + TOOL_CALL_CLOSE)}',
                        [_GAP, *_call_rules(config.tools)])
        loop = 0 if config.parallel_tool_calls is not False else None
        return Plan((Phase(None, TOOL_CALL_OPEN), Phase(call, TOOL_CALL_CLOSE)), loop)
    else:
        return None
    name, rules = body
    answer = Phase(_grammar(f"adam-gap {name}", [_GAP, *rules]))
    if thinking == "open":
        return Plan((Phase(None, THINK_CLOSE, required=True), answer))
    if thinking == "optional":
        think_or_answer = _grammar(f"{json.dumps(THINK_OPEN)} | {name}", rules)
        return Plan((Phase(think_or_answer, THINK_OPEN), Phase(None, THINK_CLOSE, required=True),
                     answer))
    return Plan((Phase(_grammar(name, rules)),))


def _grammar(root: str, rules: list[str]) -> str:
    return "\n".join([f"root ::= {root}", *rules]) + "\n"


def schema_rules(schema: object, name: str) -> list[str]:
    """GBNF rules whose rule ``name`` matches JSON valid for ``schema``."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(json.dumps(bounded_for_generation(schema)))
    # llama-cpp-python's converter lets raw control characters (newlines) into strings,
    # which JSON forbids; llama.cpp's own converter excludes them, and so does this.
    gbnf = gbnf.replace(r'char ::= [^"\\]', r'char ::= [^"\\\x7F\x00-\x1F]')
    gbnf = re.sub(r"^root ::=", f"{name} ::=", gbnf, flags=re.MULTILINE)
    return [line for line in gbnf.splitlines() if line.strip()]


def _call_rules(tools: list[ToolSpec]) -> list[str]:
    schemas = [t.call_schema() for t in tools]
    return schema_rules(schemas[0] if len(schemas) == 1 else {"anyOf": schemas}, "adam-call")


def _call_block(tools: list[ToolSpec]) -> list[str]:
    block = (f"adam-call-block ::= {json.dumps(TOOL_CALL_OPEN + chr(10))} adam-call "
             f"{json.dumps(chr(10) + TOOL_CALL_CLOSE)}")
    return [block, *_call_rules(tools)]
