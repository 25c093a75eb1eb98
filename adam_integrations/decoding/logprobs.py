"""Log probabilities of generated tokens, for both in-process backends.

The decode thread scores each token it picks (``score``: the log-softmax of the logits as
the model produced them, before penalties, a grammar mask or temperature, as OpenAI and
Ollama report them) and hands a ``ScoredToken`` to the reader instead of a bare id. The
reader (``LogprobCollector``) spells the tokens out and attaches them to the chunk that
carries their text: a token whose text is held back (part of a stop string, a tag being
parsed) goes with the next chunk, so every generated token is reported once, in order.
Nothing here runs unless a request asks for ``logprobs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adam_integrations.core.types import Chunk, GenerationConfig, TokenLogprob


@dataclass(slots=True)
class ScoredToken:
    """A generated token id with its log probability and the top alternatives' ids."""

    token: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


def top_logprobs(config: GenerationConfig) -> int | None:
    """What a decode thread is told: None (no scores), else how many alternatives."""
    return (config.top_logprobs or 0) if config.logprobs else None


def raw_logits(logits: Any) -> Any:
    """A float64 copy of one row of logits (numpy or torch), taken before anything
    changes them in place."""
    import numpy as np

    if hasattr(logits, "detach"):  # a torch tensor
        logits = logits.detach().float().cpu().numpy()
    return np.array(logits, dtype=np.float64).reshape(-1)


def score(raw: Any, token: int, top: int) -> ScoredToken:
    """``token``'s log probability under ``raw`` logits, and the ``top`` most likely."""
    import numpy as np

    peak = raw.max()
    normaliser = peak + np.log(np.exp(raw - peak).sum())
    best: list[tuple[int, float]] = []
    if top:
        indices = np.argpartition(-raw, top - 1)[:top]
        best = [(int(i), float(raw[i] - normaliser))
                for i in sorted(indices, key=lambda i: -raw[i])]
    return ScoredToken(token, float(raw[token] - normaliser), best)


class LogprobCollector:
    """The reader's side: scored tokens in, ``TokenLogprob`` lists on the chunks out.

    ``spell`` gives a token id's bytes as the model writes it (special tokens too)."""

    def __init__(self, spell: Callable[[int], bytes]) -> None:
        self._spell = spell
        self._pending: list[TokenLogprob] = []

    def add(self, scored: ScoredToken) -> None:
        self._pending.append(self._spelled(scored.token, scored.logprob, [
            self._spelled(token, logprob) for token, logprob in scored.top]))

    def attach(self, chunk: Chunk | None) -> None:
        """Give ``chunk`` (when there is one) the tokens scored since the last chunk."""
        if chunk is not None and self._pending:
            chunk.logprobs, self._pending = self._pending, []

    def _spelled(self, token: int, logprob: float,
                 top: list[TokenLogprob] | None = None) -> TokenLogprob:
        data = self._spell(token)
        return TokenLogprob(data.decode("utf-8", errors="replace"), logprob, list(data),
                            top or [])


def prompt_logprobs(tokens: list[int], scores: list[ScoredToken],
                    spell: Callable[[int], bytes]) -> list[TokenLogprob]:
    """A scored prompt as ``ModelBackend.score_prompt`` returns it: ``tokens`` spelled out,
    the first without a log probability, the others with ``scores`` (in order)."""
    if len(scores) != len(tokens) - 1:
        raise ValueError(f"{len(scores)} scores for a prompt of {len(tokens)} tokens")
    collector = LogprobCollector(spell)
    first = spell(tokens[0]) if tokens else b""
    spelled = [TokenLogprob(first.decode("utf-8", errors="replace"), None, list(first))]
    for scored in scores:
        collector.add(scored)
    holder = Chunk()
    collector.attach(holder)
    return spelled[:len(tokens)] + holder.logprobs
