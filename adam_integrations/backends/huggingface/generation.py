"""Generation on transformers: ``model.generate`` on the compute thread, tokens streamed
back over a queue and turned into chunks.

When the consumer stops reading (break, close, async cancellation), a stopping criterion
ends ``generate`` at the next token step, and the stream waits for that before it closes.
Sampling is done by this module's logits processors, in one order (penalties, the grammar
mask, then temperature/top-k/top-p/min-p), with ``generate``'s own samplers off.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

from adam_integrations.backends import compute
from adam_integrations.backends.constrained import ConstrainedDecoder
from adam_integrations.backends.huggingface.loaded import LoadedModel
from adam_integrations.core.decoding import (
    DEFAULT_REPEAT_PENALTY,
    PENALTY_LAST_N,
    ChunkAssembler,
)
from adam_integrations.core.errors import AdamError
from adam_integrations.core.streaming import Failure
from adam_integrations.core.types import Chunk, GenerationConfig

_END = object()


@dataclass
class GenerationRequest:
    """Everything one generation needs, prepared before the stream starts."""

    input_ids: Any
    config: GenerationConfig
    max_new: int
    settings: tuple[Any, Any]
    assembler: ChunkAssembler
    decoder: ConstrainedDecoder | None = None


def stream_tokens(loaded: LoadedModel, request: GenerationRequest) -> Iterator[Chunk]:
    """Run ``generate`` for ``request`` on the compute thread and yield its chunks."""
    tokens: queue.SimpleQueue[Any] = queue.SimpleQueue()
    cancel = threading.Event()
    job = compute.submit(_run_generate, loaded, request, tokens, cancel)
    try:
        yield from _decode_stream(loaded, request, tokens)
    finally:
        cancel.set()  # a queued job that has not started yet ends at its first step
        futures.wait([job])


def _run_generate(loaded: LoadedModel, request: GenerationRequest, tokens: queue.SimpleQueue[Any],
                  cancel: threading.Event) -> None:
    """Runs on the compute thread: ``generate``, passing each new token on."""
    import torch
    from transformers import StoppingCriteriaList

    generation_config, processors = request.settings
    if cancel.is_set():  # the consumer left while this job waited in the queue
        tokens.put(_END)
        return
    try:
        if request.config.seed is not None:
            torch.manual_seed(request.config.seed)
        ids = request.input_ids.to(loaded.device)
        with torch.inference_mode():
            loaded.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                generation_config=generation_config,
                logits_processor=processors,
                streamer=_QueueStreamer(tokens),
                stopping_criteria=StoppingCriteriaList([_CancelCriteria(cancel)]),
            )
    except BaseException as error:  # re-raised in the consumer's thread
        tokens.put(Failure(error))
    finally:
        tokens.put(_END)


class _QueueStreamer:
    """A transformers streamer that puts each generated token id on a queue."""

    def __init__(self, tokens: queue.SimpleQueue[Any]) -> None:
        self._tokens = tokens
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self._tokens.put(token)

    def end(self) -> None:
        """Generation finished; the thread body signals the end itself."""


class _CancelCriteria:
    """Stop ``generate`` at the next step once the consumer has gone away."""

    def __init__(self, cancel: threading.Event) -> None:
        self._cancel = cancel

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        stop = self._cancel.is_set() or compute.shutting_down.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def _decode_stream(
    loaded: LoadedModel, request: GenerationRequest, tokens: queue.SimpleQueue[Any]
) -> Iterator[Chunk]:
    """Token ids from the compute thread in, chunks out."""
    assembler = request.assembler
    decoder = IncrementalDecoder(loaded.tokenizer)
    while True:
        item = tokens.get()
        if item is _END:
            break
        if isinstance(item, Failure):
            raise AdamError(f"generation failed: {item.error}") from item.error
        if item in loaded.eos_ids:
            assembler.end_of_turn()
            continue
        piece = assembler.token(decoder.push(item))
        if piece is not None:
            yield piece
        if assembler.stopped:
            break
    closed_early = request.decoder is not None and request.decoder.closed_early
    yield assembler.finish(decoder.flush(), closed_early=closed_early)


class IncrementalDecoder:
    """Token ids in, text deltas out, correct across multi-byte characters and spaces.

    Decoding each token alone loses leading spaces (sentencepiece) and splits UTF-8
    characters that span tokens; decoding everything each step is quadratic. This keeps
    a short window of previous tokens as context and holds back an incomplete character.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        return self._emit(final=False)

    def flush(self) -> str:
        return self._emit(final=True)

    def _emit(self, *, final: bool) -> str:
        decode = self._tokenizer.decode
        before = decode(self._ids[self._prefix:self._read], skip_special_tokens=True)
        after = decode(self._ids[self._prefix:], skip_special_tokens=True)
        if len(after) <= len(before) or (after.endswith("\ufffd") and not final):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return after[len(before):]


def generation_settings(
    loaded: LoadedModel, config: GenerationConfig, max_new: int,
    constraint: ConstraintProcessor | None,
) -> tuple[Any, Any]:
    """transformers' GenerationConfig and the logits processors for one request.

    The processors are built here, in one order: penalties, then the constraint (grammar
    mask, thinking budget, closing at the budget), then temperature/top-k/top-p/min-p. (Processors
    handed to ``generate`` run after its own samplers, where a top-k cut could leave the
    grammar no token; so ``generate``'s own samplers are switched off.)
    """
    from transformers import (
        LogitsProcessorList,
        MinPLogitsWarper,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    defaults = loaded.model.generation_config
    processors = LogitsProcessorList()
    repeat = config.repetition_penalty or DEFAULT_REPEAT_PENALTY
    if repeat != 1.0 or config.presence_penalty or config.frequency_penalty:
        processors.append(_Penalties(repeat, config.presence_penalty or 0.0,
                                     config.frequency_penalty or 0.0))
    if constraint is not None:
        processors.append(constraint)
    sample = not config.greedy and (config.sampling_given or bool(defaults.do_sample))
    if sample:
        temperature = _first(config.temperature, defaults.temperature, 1.0)
        top_k = _first(config.top_k, defaults.top_k, 0)
        top_p = _first(config.top_p, defaults.top_p, 1.0)
        min_p = _first(config.min_p, defaults.min_p, 0.0)
        if temperature != 1.0:
            processors.append(TemperatureLogitsWarper(temperature))
        if top_k:
            processors.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p))
        if min_p:
            processors.append(MinPLogitsWarper(min_p))
    generation_config = copy.deepcopy(defaults)
    pad = _first(generation_config.pad_token_id, loaded.tokenizer.pad_token_id,
                 min(loaded.eos_ids) if loaded.eos_ids else None)
    generation_config.update(do_sample=sample, temperature=1.0, top_k=0 if sample else None,
                             top_p=1.0, min_p=None,
                             repetition_penalty=1.0, max_new_tokens=max_new, max_length=None,
                             pad_token_id=pad)
    return generation_config, processors


class ConstraintProcessor:
    """A transformers logits processor running a ``ConstrainedDecoder``: it reports the
    tokens sampled since the last step, then masks the next step's logits (batches of one
    sequence, as this backend generates)."""

    def __init__(self, decoder: ConstrainedDecoder) -> None:
        self._decoder = decoder
        self._prompt_length: int | None = None
        self._seen = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._prompt_length is None:
            self._prompt_length = input_ids.shape[-1]
        for token in input_ids[0, self._prompt_length + self._seen:].tolist():
            self._decoder.accept(token)
            self._seen += 1
        self._decoder.mask(scores[0])
        return scores


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


class _Penalties:
    """llama.cpp's penalties sampler, so both backends decode alike: over the last
    ``PENALTY_LAST_N`` generated tokens, a repeated token's logit is divided by ``repeat``
    (multiplied when negative), then ``frequency`` x its count and ``presence`` are
    subtracted (OpenAI's penalties)."""

    def __init__(self, repeat: float, presence: float, frequency: float) -> None:
        self._repeat, self._presence, self._frequency = repeat, presence, frequency
        self._prompt_length: int | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._prompt_length is None:
            self._prompt_length = input_ids.shape[-1]
        recent = input_ids[:, self._prompt_length:][:, -PENALTY_LAST_N:]
        if recent.shape[-1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(
            1, recent, torch.ones_like(recent, dtype=scores.dtype))
        seen = counts > 0
        if self._repeat != 1.0:
            penalised = torch.where(scores > 0, scores / self._repeat, scores * self._repeat)
            scores = torch.where(seen, penalised, scores)
        return scores - self._frequency * counts - self._presence * seen.to(scores.dtype)
