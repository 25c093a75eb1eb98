"""``adam eval``: how much a quantization costs, measured on this machine.

For each GGUF, over a text of the user's (never a data set from the hub):

- **perplexity** as llama.cpp's ``llama-perplexity`` computes it: the tokens cut into
  chunks of ``context`` tokens (the first one of each replaced by BOS where the vocabulary
  adds one), each chunk read in one pass, and the second half of each chunk scored (every
  scored token has at least ``context / 2`` tokens before it);
- against a **reference** (the unquantized model), over the same positions: the mean KL
  divergence from the reference's next-token distribution to the model's (nats), and how
  often both rank the same token first (top-1 agreement);
- **speed**: prompt tokens per second (the chunks) and generated tokens per second (one
  token at a time after a short prompt).

The models run on llama.cpp (llama-cpp-python), one at a time with the reference, chunk by
chunk (both loaded together: models that fit twice in memory). The transformers backend's
evaluation is not written yet.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.gguf_header import read_gguf_header

DEFAULT_CONTEXT = 512
"""Tokens per chunk (``llama-perplexity``'s default)."""
DECODE_TOKENS = 64
"""Tokens generated one at a time for the decode speed."""


@dataclass(frozen=True)
class Evaluation:
    """One model's figures (``kl_divergence`` and ``top1_agreement`` need a reference)."""

    model: str
    path: str
    quantization: str | None
    scored_tokens: int
    perplexity: float
    kl_divergence: float | None
    top1_agreement: float | None
    prefill_tokens_per_s: float
    decode_tokens_per_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(models: Sequence[str | os.PathLike[str]], text: str, *,
             reference: str | os.PathLike[str] | None = None, context: int = DEFAULT_CONTEXT,
             chunks: int | None = None, decode_tokens: int = DECODE_TOKENS,
             threads: int | None = None) -> list[Evaluation]:
    """Perplexity, divergence from ``reference`` and speed of each GGUF in ``models`` over
    ``text`` (see the module docstring); ``chunks`` caps the chunks read.

    >>> evaluate(["smollm2"], "too short")
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: the text has ... tokens; ...
    """
    if context < 16:
        raise InvalidRequestError(f"context={context}: give at least 16 tokens per chunk")
    if not models:
        raise InvalidRequestError("name at least one model to evaluate")
    base = _Scorer(_gguf(reference), context, threads) if reference is not None else None
    try:
        return [_evaluate(_gguf(model), text, base, context, chunks, decode_tokens, threads)
                for model in models]
    finally:
        if base is not None:
            base.close()


def _evaluate(path: Path, text: str, base: _Scorer | None, context: int,
              chunks: int | None, decode_tokens: int, threads: int | None) -> Evaluation:
    import numpy as np

    scorer = _Scorer(path, context, threads)
    try:
        tokens = scorer.tokens(text)
        if base is not None and base.tokens(text) != tokens:
            raise InvalidRequestError(
                f"{path.name} and the reference read the text as different tokens (another "
                "vocabulary): divergence needs the same model quantized differently")
        count = len(tokens) // context
        if count == 0:
            raise InvalidRequestError(
                f"the text has {len(tokens)} tokens; perplexity needs at least one chunk of "
                f"{context} (give a longer text, or a smaller context)")
        count = min(count, chunks) if chunks else count
        nll, scored, kl, agree, seconds = 0.0, 0, 0.0, 0, 0.0
        first = context // 2
        for chunk in _chunks(tokens, count, context, scorer.bos):
            started = time.perf_counter()
            logits = scorer.logits(chunk)
            seconds += time.perf_counter() - started
            logp = _log_softmax(logits[first:context - 1])
            targets = np.asarray(chunk[first + 1:context])
            nll -= float(logp[np.arange(len(targets)), targets].sum())
            scored += len(targets)
            if base is not None:
                reference = _log_softmax(base.logits(chunk)[first:context - 1])
                kl += float((np.exp(reference) * (reference - logp)).sum())
                agree += int((reference.argmax(-1) == logp.argmax(-1)).sum())
        decode = scorer.decode_speed(tokens[:16], decode_tokens)
    finally:
        scorer.close()
    return Evaluation(
        model=path.name, path=str(path), quantization=read_gguf_header(path).quantization,
        scored_tokens=scored, perplexity=math.exp(nll / scored),
        kl_divergence=kl / scored if base is not None else None,
        top1_agreement=agree / scored if base is not None else None,
        prefill_tokens_per_s=count * context / seconds, decode_tokens_per_s=decode)


def _chunks(tokens: list[int], count: int, context: int, bos: int | None
            ) -> Iterator[list[int]]:
    for i in range(count):
        chunk = tokens[i * context:(i + 1) * context]
        if bos is not None:
            chunk[0] = bos
        yield chunk


def _log_softmax(logits: Any) -> Any:
    import numpy as np

    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _gguf(model: str | os.PathLike[str]) -> Path:
    source = resolve_model(model)
    if source.kind != "gguf":
        raise InvalidRequestError(
            f"{source.name} is not a GGUF file on this machine ({source.explanation}); "
            "adam eval reads GGUF files: a path, an Ollama name or a downloaded hf: GGUF")
    return Path(source.location)


class _Scorer:
    """One GGUF on llama.cpp with logits for every position of a chunk."""

    def __init__(self, path: Path, context: int, threads: int | None) -> None:
        import llama_cpp

        self._llama = llama_cpp.Llama(model_path=str(path), n_ctx=context, n_batch=context,
                                      n_ubatch=context, logits_all=True, verbose=False,
                                      **({"n_threads": threads} if threads else {}))
        vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        self.bos = self._llama.token_bos() if llama_cpp.llama_vocab_get_add_bos(vocab) \
            else None

    def tokens(self, text: str) -> list[int]:
        tokens = self._llama.tokenize(text.encode(), add_bos=False, special=False)
        return [self.bos, *tokens] if self.bos is not None else tokens

    def logits(self, chunk: list[int]) -> Any:
        import numpy as np

        self._llama.reset()
        self._llama.eval(chunk)
        return np.array(self._llama.scores[:len(chunk)], dtype=np.float32)

    def decode_speed(self, prompt: list[int], count: int) -> float:
        """Tokens per second generating ``count`` tokens greedily after ``prompt``."""
        self._llama.reset()
        self._llama.eval(prompt)
        started = time.perf_counter()
        for _ in range(count):
            self._llama.eval([int(self._llama.scores[self._llama.n_tokens - 1].argmax())])
        return count / (time.perf_counter() - started)

    def close(self) -> None:
        self._llama.close()
