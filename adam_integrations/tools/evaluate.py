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

The models run on llama.cpp (``backend="llamacpp"``, GGUF files) or on transformers
(``backend="huggingface"``: GGUFs, which it dequantizes, and safetensors checkpoints),
one at a time with the reference, chunk by chunk (both loaded together: models that fit
twice in memory). Compare figures from one backend: the same file computes a little
differently on the other (llama.cpp multiplies quantized blocks; transformers dequantizes
them to its dtype).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.extras import require_extra
from adam_integrations.core.measurements import record
from adam_integrations.core.stores.gguf_header import read_gguf_header
from adam_integrations.tools.quantize import gguf_on_disk

DEFAULT_CONTEXT = 512
"""Tokens per chunk (``llama-perplexity``'s default)."""
DECODE_TOKENS = 64
"""Tokens generated one at a time for the decode speed."""

Backend = Literal["llamacpp", "huggingface"]


@dataclass(frozen=True)
class Evaluation:
    """One model's figures (``kl_divergence`` and ``top1_agreement`` need a reference)."""

    model: str
    path: str
    backend: str
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
             threads: int | None = None, backend: Backend = "llamacpp",
             reference_backend: Backend | None = None, text_name: str = "text",
             keep: bool = True,
             report: Callable[[str], None] = lambda line: None) -> list[Evaluation]:
    """Perplexity, divergence from ``reference`` and speed of each model in ``models`` over
    ``text`` on ``backend`` (see the module docstring); ``chunks`` caps the chunks read.
    ``reference_backend`` runs the reference elsewhere (default: ``backend``), e.g. a
    converted GGUF on llama.cpp against its transformers checkpoint on transformers.
    ``keep``: remember each GGUF's figures (``core.measurements``, under ``text_name``)
    for the model pick. ``report`` gets a line as each model starts and each chunk is
    scored (``adam eval`` prints them on stderr).

    >>> evaluate(["smollm2"], "too short")
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: the text has ... tokens; ...
    """
    if context < 16:
        raise InvalidRequestError(f"context={context}: give at least 16 tokens per chunk")
    if not models:
        raise InvalidRequestError("name at least one model to evaluate")
    scorer_class = _scorer_class(backend, "backend")
    base = _scorer_class(reference_backend or backend, "reference_backend")(
        reference, context, threads) if reference is not None else None
    try:
        results = []
        for number, model in enumerate(models, 1):
            report(f"[{number}/{len(models)}] {model}: loading")
            results.append(_evaluate(scorer_class(model, context, threads), text, base,
                                     context, chunks, decode_tokens, report))
    finally:
        if base is not None:
            base.close()
    if keep:
        for result in results:
            if result.quantization is not None:
                record(result.path, quantization=result.quantization, text=text,
                       text_name=text_name, backend=result.backend,
                       perplexity=result.perplexity,
                       prefill_tokens_per_s=result.prefill_tokens_per_s,
                       decode_tokens_per_s=result.decode_tokens_per_s)
    return results


def _scorer_class(backend: str, argument: str) -> type[_Scorer]:
    if backend not in ("llamacpp", "huggingface"):
        raise InvalidRequestError(f"{argument}={backend!r}: evaluate runs on 'llamacpp' "
                                  "or 'huggingface'", param=argument)
    return _LlamaScorer if backend == "llamacpp" else _TransformersScorer


def _evaluate(scorer: _Scorer, text: str, base: _Scorer | None, context: int,
              chunks: int | None, decode_tokens: int,
              report: Callable[[str], None]) -> Evaluation:
    import numpy as np

    path = scorer.path
    try:
        tokens = scorer.tokens(text)
        if base is not None and base.tokens(text) != tokens:
            raise InvalidRequestError(
                f"{path.name} and the reference read the text as different tokens (another "
                "vocabulary): divergence needs the same model quantized differently")
        count = chunk_count(len(tokens), context, chunks, "perplexity")
        nll, scored, kl, agree, seconds = 0.0, 0, 0.0, 0, 0.0
        first = context // 2
        for number, chunk in enumerate(_chunks(tokens, count, context, scorer.bos), 1):
            if scored:
                report(f"  {path.name}: chunk {number}/{count}, perplexity so far "
                       f"{math.exp(nll / scored):.4f}")
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
        report(f"  {path.name}: {count} chunks scored (perplexity {math.exp(nll / scored):.4f}"
               "); measuring decode speed")
        decode = scorer.decode_speed(tokens[:16], decode_tokens)
    finally:
        scorer.close()
    return Evaluation(
        model=path.name, path=str(path), backend=scorer.backend,
        quantization=read_gguf_header(path).quantization if path.suffix == ".gguf" else None,
        scored_tokens=scored, perplexity=math.exp(nll / scored),
        kl_divergence=kl / scored if base is not None else None,
        top1_agreement=agree / scored if base is not None else None,
        prefill_tokens_per_s=count * context / seconds, decode_tokens_per_s=decode)


def chunk_count(tokens: int, context: int, chunks: int | None, measure: str) -> int:
    """How many whole chunks of ``context`` tokens to read (at most ``chunks``), refused
    when the text does not fill one."""
    count = tokens // context
    if count == 0:
        raise InvalidRequestError(
            f"the text has {tokens} tokens; {measure} needs at least one chunk of {context} "
            "(give a longer text, or a smaller context)")
    return min(count, chunks) if chunks else count


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


class _Scorer:
    """One model with logits for every position of a chunk."""

    backend = ""
    path: Path
    bos: int | None

    def tokens(self, text: str) -> list[int]:
        raise NotImplementedError

    def logits(self, chunk: list[int]) -> Any:
        raise NotImplementedError

    def decode_speed(self, prompt: list[int], count: int) -> float:
        """Tokens per second generating ``count`` tokens greedily after ``prompt``."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _LlamaScorer(_Scorer):
    backend = "llamacpp"

    def __init__(self, model: str | os.PathLike[str], context: int, threads: int | None
                 ) -> None:
        require_extra("llamacpp", "evaluating on llama.cpp")
        import llama_cpp

        self.path = gguf_on_disk(resolve_model(model),
                                 "evaluate on llama.cpp (--backend huggingface reads "
                                 "checkpoints too)")
        self._llama = llama_cpp.Llama(model_path=str(self.path), n_ctx=context,
                                      n_batch=context, n_ubatch=context, logits_all=True,
                                      verbose=False,
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
        self._llama.reset()
        self._llama.eval(prompt)
        started = time.perf_counter()
        for _ in range(count):
            self._llama.eval([int(self._llama.scores[self._llama.n_tokens - 1].argmax())])
        return count / (time.perf_counter() - started)

    def close(self) -> None:
        self._llama.close()


class _TransformersScorer(_Scorer):
    backend = "huggingface"

    def __init__(self, model: str | os.PathLike[str], context: int, threads: int | None
                 ) -> None:
        from adam_integrations.backends.local.huggingface import HuggingFaceModel

        if threads is not None:
            raise InvalidRequestError("threads= sets llama.cpp's threads; on transformers "
                                      "torch picks its own (leave threads out)")
        source = resolve_model(model)
        if source.kind not in ("gguf", "folder", "hub"):
            raise InvalidRequestError(f"{source.name} is a {source.kind} model; evaluate a "
                                      "model on this machine")
        self.path = Path(source.location)
        self._model = HuggingFaceModel(source)
        self.bos = None  # the tokenizer adds one where the model wants it

    def tokens(self, text: str) -> list[int]:
        return self._model.tokenize(text)

    def logits(self, chunk: list[int]) -> Any:
        return self._model.token_logits(chunk)

    def decode_speed(self, prompt: list[int], count: int) -> float:
        usage = self._model.complete(" ".join(["the"] * 8), max_tokens=count,
                                     temperature=0.0).usage
        assert usage is not None
        return usage.completion_tokens / max(usage.completion_seconds, 1e-9)

    def close(self) -> None:
        self._model.unload()
