"""Constrained decoding, planned once for every local backend: phases of free and
grammar-bound text, with xgrammar grammars (what vLLM and SGLang use too).

What the answer must look like comes from the request:

- ``response_format``: JSON for the schema (any object for "json");
- a forced ``tool_choice``: one ``<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>``
  block (several when ``parallel_tool_calls=True``) whose JSON matches one of the tools;
- ``tool_choice="auto"``: free text, but once the model writes ``<tool_call>`` the call
  must be valid JSON for one of the tools;
- a thinking model may think first (``<think>...</think>``), and a prompt that opened the
  think block lets the model finish it, in every case.

A request becomes a ``Plan``: phases that each end at a marker (``</think>``,
``<tool_call>``) or when their grammar is complete, with a grammar only where the output
must have a form. Free text runs with no mask at all (what llama.cpp's server calls a lazy
grammar), so it decodes at full speed. ``decoding.constrained.ConstrainedDecoder`` runs a
plan token by token; the backends only hand it their logits.

Schemas are checked and rewritten first (``decoding.json_schema``), so every keyword is
enforced, refused or knowingly relaxed. ``Grammars`` compiles each phase's format once per
tokenizer and keeps it (LRU), and knows the tokenizer's tokens as bytes.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.output import THINK_CLOSE, THINK_OPEN
from adam_integrations.core.prompt import TemplateTraits
from adam_integrations.core.tools import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    ToolSpec,
    any_call_schema,
)
from adam_integrations.core.types import GenerationConfig
from adam_integrations.decoding.json_schema import PreparedSchema, prepare_schema

ThinkingMode = Literal["none", "optional", "open"]
"""Whether output may start with a think block ("optional"), starts inside one because the
prompt opened it ("open"), or has none."""

# A 135M model left free to emit whitespace inside JSON may never stop; two are plenty.
_MAX_JSON_WHITESPACE = 2
_GAP = {"type": "regex", "pattern": "[ \\n]{0,2}"}


def thinking_mode(traits: TemplateTraits, config: GenerationConfig, starts_thinking: bool
                  ) -> ThinkingMode:
    """Where a constrained answer may think: inside a block the prompt opened, in an
    optional block of a thinking template (unless ``think=False``), or nowhere."""
    if starts_thinking:
        return "open"
    if traits.thinking and config.think is not False:
        return "optional"
    return "none"


@dataclass(frozen=True)
class Phase:
    """One stretch of output: bound by ``format`` (an xgrammar structural-tag format; None =
    free text), ended by the ``until`` marker or, with a format, when it is complete."""

    format: dict[str, Any] | None
    until: str | None = None
    required: bool = False
    ends_answer: bool = False
    """When its format is complete, the answer is over (the phase that lets a thinking
    model either open ``<think>`` or answer at once: it answered)."""
    """Free text whose marker must come: the model cannot end its turn before it, and the
    thinking budget writes it (a think block closed before a constrained answer, as the
    Qwen team's thinking budget does)."""


@dataclass(frozen=True)
class Plan:
    """The phases of one answer; after the last one, generation goes on from phase
    ``loop_from`` (None: the answer ends there)."""

    phases: tuple[Phase, ...]
    loop_from: int | None = None
    answer: dict[str, Any] | None = None
    """The format the answer must have (None when free text may end it): its smallest
    instance must fit in max_tokens."""
    relaxations: tuple[str, ...] = ()

    @property
    def answer_key(self) -> str:
        """A stable key of the answer's format (for caches)."""
        return json.dumps(self.answer, sort_keys=True)


def request_plan(config: GenerationConfig, thinking: ThinkingMode) -> Plan | None:
    """The phases for this request, or None for free text throughout.

    Example:
        >>> plan = request_plan(GenerationConfig(tools=[{"name": "now"}]), "none")
        >>> plan.phases[0], plan.loop_from      # free text until the model opens a call
        (Phase(format=None, until='<tool_call>', required=False, ends_answer=False), 0)
        >>> plan.phases[1].format["type"]       # then a call, bound by a grammar
        'sequence'
    """
    if config.response_format is not None:
        prepared = prepare_schema(config.response_format.schema or {"type": "object"})
        answer = _json(prepared.schema)
    elif config.forced_call:
        prepared, call = _call_tag(config.forced_tools)
        answer = call if config.parallel_tool_calls is not True else {
            "type": "tags_with_separator", "tags": [call], "separator": "\n",
            "at_least_one": True}
    elif config.tools_active:
        prepared, call = _call_tag(config.tools)
        body = {"type": "sequence", "elements": [
            _GAP, call["content"], {"type": "const_string", "value": call["end"]}]}
        loop = 0 if config.parallel_tool_calls is not False else None
        return Plan((Phase(None, TOOL_CALL_OPEN), Phase(body)), loop,
                    relaxations=prepared.relaxations)
    else:
        return None
    after_thinking = Phase({"type": "sequence", "elements": [_GAP, answer]})
    relaxations = prepared.relaxations
    if thinking == "open":
        phases: tuple[Phase, ...] = (Phase(None, THINK_CLOSE, required=True), after_thinking)
    elif thinking == "optional":
        think_or_answer = {"type": "or", "elements": [
            {"type": "const_string", "value": THINK_OPEN}, answer]}
        phases = (Phase(think_or_answer, THINK_OPEN, ends_answer=True),
                  Phase(None, THINK_CLOSE, required=True), after_thinking)
    else:
        phases = (Phase(answer),)
    return Plan(phases, answer=answer, relaxations=relaxations)


def _json(schema: Any) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": schema,
            "max_whitespace_cnt": _MAX_JSON_WHITESPACE}


def _call_tag(tools: list[ToolSpec]) -> tuple[PreparedSchema, dict[str, Any]]:
    """The tag of one call of any of ``tools``, and what preparing their schemas relaxed."""
    prepared = prepare_schema(any_call_schema(tools))
    return prepared, {"type": "tag", "begin": f"{TOOL_CALL_OPEN}\n",
                      "content": _json(prepared.schema), "end": f"\n{TOOL_CALL_CLOSE}"}


class Grammars:
    """The grammars of one tokenizer: each format compiled once and kept (LRU), and what
    constrained decoding needs to know of the tokens.

    ``tokenizer_info`` makes the xgrammar ``TokenizerInfo`` on first use (reading a
    151k-token vocabulary takes a moment); ``end_ids`` are the end-of-turn tokens.
    """

    def __init__(self, tokenizer_info: Callable[[], Any], end_ids: Sequence[int],
                 capacity: int = 64) -> None:
        self._make_info = tokenizer_info
        self.end_ids = sorted(set(end_ids))
        self._capacity = capacity
        self._compiler: Any = None
        self._info: Any = None
        self._compiled: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._by_bytes: dict[bytes, int] | None = None
        self._plain: Any = None
        self._safe_bits: Any = None
        self.smallest: dict[str, int] = {}
        """Tokens of the smallest answer, by answer format (``Plan.answer_key``)."""
        self._pieces: list[bytes] = []
        self.compilations = 0
        self.cache_hits = 0
        self.compile_seconds = 0.0

    @property
    def info(self) -> Any:
        """The xgrammar ``TokenizerInfo`` (made on first use)."""
        with self._lock:
            return self._ensure_info()

    def _ensure_info(self) -> Any:
        if self._info is None:
            self._info = self._make_info()
            self._pieces = _decoded_vocab(self._info)
        return self._info

    @property
    def pieces(self) -> list[bytes]:
        """Every token as the bytes it writes (special tokens: empty)."""
        self.info  # noqa: B018 - made with the info
        return self._pieces

    def compiled(self, fmt: dict[str, Any]) -> Any:
        """The compiled grammar of a structural-tag format, compiling it on first use."""
        key = json.dumps(fmt, sort_keys=True)
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
                self.cache_hits += 1
                return self._compiled[key]
            # Compile the format as written: sorting keys would reorder properties.
            compiled = self._compile(json.dumps({"type": "structural_tag", "format": fmt}))
            self._compiled[key] = compiled
            if len(self._compiled) > self._capacity:
                self._compiled.popitem(last=False)
            return compiled

    def stats(self) -> dict[str, Any]:
        """Compilations, cache hits and seconds spent compiling (``info().details``)."""
        return {"compilations": self.compilations, "cache_hits": self.cache_hits,
                "compile_seconds": round(self.compile_seconds, 4)}

    def _compile(self, description: str) -> Any:
        import xgrammar

        if self._compiler is None:
            self._compiler = xgrammar.GrammarCompiler(self._ensure_info(), max_threads=2)
        started = time.perf_counter()
        try:
            compiled = self._compiler.compile_structural_tag(description)
        except Exception as error:  # xgrammar raises RuntimeError/ValueError/TypeError
            message = str(error).strip().splitlines()[-1] if str(error).strip() else error
            raise InvalidRequestError(
                f"this schema cannot be turned into a grammar: {message}. Simplify the "
                "schema or use response_format='json'") from None
        self.compile_seconds += time.perf_counter() - started
        self.compilations += 1
        return compiled

    # -- tokens as bytes ----------------------------------------------------------------
    def encode(self, data: bytes) -> list[int]:
        """Tokens spelling ``data`` exactly (longest match first), for text the decoder
        writes itself: no tokenizer quirks such as an added leading space."""
        table = self._token_table()
        tokens, at = [], 0
        while at < len(data):
            for length in range(min(_LONGEST_TOKEN, len(data) - at), 0, -1):
                token = table.get(data[at:at + length])
                if token is not None:
                    tokens.append(token)
                    at += length
                    break
            else:
                raise InvalidRequestError(f"no token spells {data[at:at + 1]!r}")
        return tokens

    def token_spelling(self, data: bytes) -> int | None:
        """The token that is exactly ``data``, if the vocabulary has one."""
        return self._token_table().get(data)

    def byte_token(self, byte: int) -> int | None:
        """The token that is exactly this one byte, if the vocabulary has one."""
        return self.token_spelling(bytes([byte]))

    def _token_table(self) -> dict[bytes, int]:
        if self._by_bytes is None:
            info = self.info
            special = set(info.special_token_ids) | set(self.end_ids)
            table: dict[bytes, int] = {}
            for token, piece in enumerate(self.pieces):
                if piece and token not in special and len(piece) <= _LONGEST_TOKEN:
                    table.setdefault(piece, token)
            self._by_bytes = table
        return self._by_bytes

    def plain_tokens(self) -> Any:
        """A bool tensor over the vocabulary: tokens with no JSON structure in them (no
        brackets, quotes, commas, colons, escapes), which cannot make an answer longer to
        close."""
        if self._plain is None:
            import torch

            structural = set(b'{}[]",:\\')
            self._plain = torch.tensor(
                [bool(piece) and not (set(piece) & structural)
                 for piece in self.pieces], dtype=torch.bool)
        return self._plain


    def json_safe_bits(self) -> Any:
        """A token bitmask (xgrammar's layout) of the tokens a constrained answer may use:
        none with control characters other than a newline (xgrammar lets a raw tab into
        length-bounded strings, which JSON forbids), and the end-of-turn tokens."""
        if self._safe_bits is None:
            import torch
            import xgrammar

            info = self.info
            ends = set(self.end_ids)
            unsafe = set(range(0x20)) - {0x0A}
            allowed = torch.tensor([token in ends or not (set(piece) & unsafe)
                                    for token, piece in enumerate(self.pieces)],
                                   dtype=torch.bool)
            padded = torch.zeros(info.vocab_size, dtype=torch.bool)
            padded[:len(allowed)] = allowed[:info.vocab_size]
            bits = xgrammar.allocate_token_bitmask(1, info.vocab_size)
            words = padded.to(torch.int64)
            words = torch.nn.functional.pad(words, (0, bits.shape[-1] * 32 - len(words)))
            weights = 2 ** torch.arange(32, dtype=torch.int64)
            packed = (words.view(-1, 32) * weights).sum(dim=1)
            bits[0] = (packed - (packed >= 2**31).to(torch.int64) * 2**32).to(torch.int32)
            self._safe_bits = bits
        return self._safe_bits


def _decoded_vocab(info: Any) -> list[bytes]:
    """``info.decoded_vocab``, read once. The public property converts every entry through
    a slow path (2 s for a 49k vocabulary); the binding's own list converts in 0.05 s."""
    handle = getattr(info, "_handle", None)
    if handle is not None and callable(getattr(handle, "decoded_vocab", None)):
        return [bytes(piece) for piece in handle.decoded_vocab()]
    return [bytes(piece) for piece in info.decoded_vocab]


_LONGEST_TOKEN = 48
