"""Repetition penalties as llama.cpp's penalties sampler applies them, for both local
backends, so the same request decodes alike on transformers and llama.cpp.

Over the last ``PENALTY_LAST_N`` generated tokens, a repeated token's logit is divided by
``repeat`` (multiplied when negative), then ``frequency`` x its count and ``presence`` are
subtracted (OpenAI's penalties). Only the logits of those few tokens change, so a step
costs microseconds rather than a pass over the vocabulary (llama.cpp's sampler looks every
vocabulary entry up in its counts: ~0.3 ms per token for a 49k vocabulary).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from adam_integrations.core.types import GenerationConfig
from adam_integrations.decoding.chunks import DEFAULT_REPEAT_PENALTY, PENALTY_LAST_N


@dataclass(frozen=True)
class Penalties:
    """One request's penalties; see the module doc."""

    repeat: float = DEFAULT_REPEAT_PENALTY
    presence: float = 0.0
    frequency: float = 0.0

    @classmethod
    def of(cls, config: GenerationConfig) -> Penalties | None:
        """The request's penalties (unset: the default repeat penalty), or None when
        they change nothing."""
        penalties = cls(config.repetition_penalty or DEFAULT_REPEAT_PENALTY,
                        config.presence_penalty or 0.0, config.frequency_penalty or 0.0)
        neutral = penalties.repeat == 1.0 and not (penalties.presence or penalties.frequency)
        return None if neutral else penalties

    def apply(self, scores: Any, generated: Any) -> None:
        """Penalise ``scores`` (one row of logits: a numpy array or a torch tensor) in
        place for the last ``PENALTY_LAST_N`` of ``generated`` (token ids: a list or a
        1-D tensor). Plain Python over those few tokens: a torch call on the decode thread
        would start torch's own CPU threads beside llama.cpp's."""
        recent = generated[-PENALTY_LAST_N:]
        counts = Counter(recent.tolist() if hasattr(recent, "tolist") else recent)
        if not counts:
            return
        ids = list(counts)
        values = scores[ids].tolist()
        if self.repeat != 1.0:
            values = [v / self.repeat if v > 0 else v * self.repeat for v in values]
        values = [v - self.frequency * counts[i] - self.presence
                  for i, v in zip(ids, values, strict=True)]
        scores[ids] = scores.new_tensor(values) if hasattr(scores, "new_tensor") else values
