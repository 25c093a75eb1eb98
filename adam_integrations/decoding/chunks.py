"""From generated tokens to chunks: the part of a generation loop every local backend shares.

A backend feeds ``ChunkAssembler`` each generated token's text (or an end-of-turn token)
and yields what it returns. The assembler cuts at stop strings, splits thinking and tool
calls from the answer (``core.output``), counts reasoning tokens, and builds exact usage
and the finish reason for the last chunk.
"""

from __future__ import annotations

import time

from adam_integrations.core.output import ResponseParser, merge_chunks
from adam_integrations.core.streaming import StopStringFilter
from adam_integrations.core.types import Chunk, FinishReason, GenerationConfig, Usage

DEFAULT_REPEAT_PENALTY = 1.1
"""Ollama's and llama.cpp's default, on every local backend, so the same request behaves
the same on transformers and llama.cpp: without it, greedy decoding of small models loops
(``"john_john_john..."``)."""
PENALTY_LAST_N = 64
"""Penalties look at the last this many generated tokens (llama.cpp's ``repeat_last_n``)."""


class ChunkAssembler:
    """Accumulates one generation; see the module docstring."""

    def __init__(
        self, config: GenerationConfig, parser: ResponseParser, *, prompt_tokens: int,
        max_new: int, load_seconds: float = 0.0,
    ) -> None:
        self._stops = StopStringFilter(config.stop)
        self._parser = parser
        self._prompt_tokens = prompt_tokens
        self._max_new = max_new
        self._load_seconds = load_seconds
        self._started = time.perf_counter()
        self._first_at = self._last_at = self._started
        self._generated = 0
        self._reasoning = 0
        self._hit_end = False

    @property
    def stopped(self) -> bool:
        """A stop string was reached: the caller should stop generating."""
        return self._stops.stopped

    def token(self, text: str) -> Chunk | None:
        """One generated token's text; the chunk to emit now, if any."""
        self._count()
        was_thinking = self._parser.in_thinking
        piece = merge_chunks(self._parser.push(self._stops.push(text)))
        if was_thinking or self._parser.in_thinking:
            self._reasoning += 1
        return None if piece.empty else piece

    def end_of_turn(self) -> None:
        """The model generated its end-of-turn token (counted, never shown)."""
        self._count()
        self._hit_end = True

    def end_of_answer(self) -> None:
        """The answer is complete (its grammar ended it) without an end-of-turn token."""
        self._hit_end = True

    def finish(self, tail: str = "", *, closed_early: bool = False) -> Chunk:
        """The last chunk: remaining text, finish reason and usage. ``closed_early``: the
        decoder completed a constrained answer at the token budget, where the model would
        have gone on ("length", though the answer is whole)."""
        finish: FinishReason = "stop"
        if closed_early or (not self.stopped and not self._hit_end
                            and self._generated >= self._max_new):
            finish = "length"
        text = "" if self.stopped else self._stops.push(tail)
        last = merge_chunks([*self._parser.push(text + self._stops.flush()),
                             *self._parser.finish()])
        last.finish_reason = finish
        last.usage = Usage(
            prompt_tokens=self._prompt_tokens,
            completion_tokens=self._generated,
            reasoning_tokens=self._reasoning,
            load_seconds=self._load_seconds,
            prompt_seconds=self._first_at - self._started,
            completion_seconds=self._last_at - self._first_at,
            total_seconds=time.perf_counter() - self._started + self._load_seconds,
        )
        return last

    def _count(self) -> None:
        self._generated += 1
        self._last_at = time.perf_counter()
        if self._generated == 1:
            self._first_at = self._last_at
