"""Generation on transformers: concurrent requests on one model batched into one
``model.generate`` on the compute thread, each row's tokens streamed back over its own
queue and turned into chunks.

Batching: requests wait in the model's ``Batcher``; when the compute thread is free, up to
``parallel`` of them start together as one left-padded batch (a "wave"), and those that
arrive meanwhile form the next one. Each row keeps its own logits processors (penalties,
grammar mask, temperature/top-k/top-p/min-p), its own random generator (so a seed gives
the same answer alone or batched), its own token limit and its own cancellation: a row
that ends (end of turn, limit, the reader left) stops being computed for and its reader
is released at once, while the other rows go on. Sampling is done by the row's
processors, which leave ``generate`` (greedy for the batch) one token to pick.

transformers' own continuous batching (``generate_batch``, ``init_continuous_batching``)
would let a request join between steps, but its per-request settings are temperature,
top-k and top-p only, with no logits processors: no grammar, no penalties, no min-p; and it
runs on a thread of its own, where this backend keeps all torch work on one thread
(``backends.compute``). So requests join at the next wave here.
"""

from __future__ import annotations

import collections
import copy
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from adam_integrations.backends import compute
from adam_integrations.backends.constrained import ConstrainedDecoder
from adam_integrations.backends.huggingface.loaded import LoadedModel
from adam_integrations.backends.logprobs import (
    LogprobCollector,
    ScoredToken,
    raw_logits,
    score,
)
from adam_integrations.backends.penalties import Penalties
from adam_integrations.core.decoding import ChunkAssembler
from adam_integrations.core.errors import AdamError
from adam_integrations.core.streaming import Failure
from adam_integrations.core.types import Chunk, GenerationConfig

_END = object()

WAVE_GATHER_SECONDS = 0.02
"""How long a wave that is not full waits for more requests before it starts: requests
sent together (``abatch``, several users at once) arrive a few milliseconds apart, and one
that just missed a wave waits for the whole of it."""


@dataclass(eq=False)
class GenerationRequest:
    """Everything one generation needs, prepared before the stream starts."""

    input_ids: Any
    config: GenerationConfig
    max_new: int
    processors: Any
    """The row's logits processors: penalties, the constraint, then the samplers."""
    generator: Any
    """The row's torch random generator when it samples; None decodes greedily."""
    assembler: ChunkAssembler
    decoder: ConstrainedDecoder | None = None
    top_logprobs: int | None = None
    """None: tokens reach the reader as ids; else as ``ScoredToken``s with this many
    alternatives (scored by ``_Rows.process``, handed over by ``_Rows.put``)."""
    scored: collections.deque[ScoredToken] = field(default_factory=collections.deque)
    tokens: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    cancel: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    """Set once the compute thread no longer uses this request."""
    generated: int = 0
    wave: list[GenerationRequest] = field(default_factory=list)
    """The requests generated together with this one (itself included), once started."""
    wave_done: threading.Event = field(default_factory=threading.Event)
    """Set once the ``generate`` of this request's wave has returned."""

    def release(self, failure: BaseException | None = None) -> None:
        """(Compute thread.) The row is over: its reader gets the end, nothing else runs
        for it."""
        if self.released.is_set():
            return
        if failure is not None:
            self.tokens.put(Failure(failure))
        self.tokens.put(_END)
        self.released.set()


class Batcher:
    """The requests waiting to generate on one loaded model; see the module docstring."""

    def __init__(self, loaded: LoadedModel, parallel: int) -> None:
        self.parallel = parallel
        self.most_at_once = 0
        """The most requests one batch has generated together so far."""
        self._loaded = loaded
        self._waiting: list[GenerationRequest] = []
        self._running = False
        self._lock = threading.Condition()

    def submit(self, request: GenerationRequest) -> None:
        with self._lock:
            self._waiting.append(request)
            self._lock.notify_all()
        compute.submit(self._run_wave)  # the first job to run takes every waiting request

    def busy(self) -> bool:
        """Whether a request is waiting or a batch is generating."""
        with self._lock:
            return self._running or bool(self._waiting)

    def withdraw(self, request: GenerationRequest) -> bool:
        """Take a request that has not started out of the queue (True when it was there)."""
        with self._lock:
            if request in self._waiting:
                self._waiting.remove(request)
                request.release()
                return True
        return False

    def _run_wave(self) -> None:
        with self._lock:
            if self._waiting:
                self._lock.wait_for(lambda: len(self._waiting) >= self.parallel,
                                    timeout=WAVE_GATHER_SECONDS)
            wave, self._waiting = (self._waiting[:self.parallel],
                                   self._waiting[self.parallel:])
            self._running = bool(wave)
        if not wave:
            return
        self.most_at_once = max(self.most_at_once, len(wave))
        try:
            generate_wave(self._loaded, wave)
        finally:
            with self._lock:
                self._running = False
            for request in wave:
                request.wave_done.set()


def stream_tokens(loaded: LoadedModel, request: GenerationRequest) -> Iterator[Chunk]:
    """Queue ``request`` on the model's batcher and yield its chunks."""
    batcher = loaded.batcher
    assert batcher is not None  # set for every causal model
    batcher.submit(request)
    try:
        yield from _decode_stream(loaded, request)
    finally:
        request.cancel.set()  # a running row ends at its next step
        if not batcher.withdraw(request):
            request.released.wait()
            if all(r.released.is_set() for r in request.wave):
                request.wave_done.wait()  # the last row out: generate itself has ended


def generate_wave(loaded: LoadedModel, wave: list[GenerationRequest]) -> None:
    """Runs on the compute thread: one ``generate`` for every request of ``wave``."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    for request in wave:
        if request.cancel.is_set():  # the reader left while this request waited
            request.release()
    wave = [r for r in wave if not r.released.is_set()]
    for request in wave:
        request.wave = wave
    if not wave:
        return
    rows = _Rows(wave, loaded.eos_ids)
    try:
        ids, mask = _left_padded([r.input_ids[0] for r in wave], loaded.pad_id)
        ids, mask = ids.to(loaded.device), mask.to(loaded.device)
        with torch.inference_mode():
            loaded.model.generate(
                input_ids=ids, attention_mask=mask,
                generation_config=wave_config(loaded, max(r.max_new for r in wave)),
                logits_processor=LogitsProcessorList([_RowProcessors(rows)]), streamer=rows,
                stopping_criteria=StoppingCriteriaList([_RowStops(rows)]))
    except BaseException as error:  # re-raised in each reader's thread
        for request in wave:
            request.release(error)
    finally:
        for request in wave:
            request.release()


def _left_padded(rows: list[Any], pad_id: int) -> tuple[Any, Any]:
    """Prompts of different lengths as one batch, padded on the left (so every row's next
    token is in the last column), and the attention mask that hides the padding."""
    import torch

    width = max(int(row.shape[-1]) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - row.shape[-1]:] = row
        mask[i, width - row.shape[-1]:] = 1
    return ids, mask


class _Rows:
    """The wave's rows, as ``generate`` sees them: its streamer (each row's tokens to its
    reader), and through ``_RowProcessors`` and ``_RowStops`` its logits processor (each
    row's own processors and sampling) and its stopping criterion (rows that ended)."""

    def __init__(self, wave: list[GenerationRequest], eos_ids: frozenset[int]) -> None:
        self._wave = wave
        self._eos_ids = eos_ids
        self._prompt_seen = False

    def process(self, input_ids: Any, scores: Any) -> Any:
        import torch

        for i, request in enumerate(self._wave):
            if request.released.is_set():
                continue
            row = scores[i:i + 1]
            raw = None if request.top_logprobs is None else raw_logits(row[0])
            for processor in request.processors:
                row = processor(input_ids[i:i + 1], row)
            if request.generator is not None:  # sample here; generate takes the one token
                probabilities = torch.softmax(row[0].float(), dim=-1)
                token = int(torch.multinomial(probabilities, 1, generator=request.generator))
                row = torch.full_like(row, float("-inf"))
                row[0, token] = 0.0
            elif raw is not None:
                token = int(row[0].argmax())  # what greedy generate will take
            if raw is not None:
                request.scored.append(score(raw, token, request.top_logprobs or 0))
            scores[i:i + 1] = row
        return scores

    def stopped(self, input_ids: Any) -> Any:
        import torch

        for request in self._wave:
            if request.cancel.is_set() or compute.shutting_down.is_set():
                request.release()
        return torch.tensor([r.released.is_set() for r in self._wave], dtype=torch.bool,
                            device=input_ids.device)

    # streamer
    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompts
            self._prompt_seen = True
            return
        for request, token in zip(self._wave, value.reshape(-1).tolist(), strict=True):
            if request.released.is_set():
                continue
            request.tokens.put(request.scored.popleft() if request.scored else token)
            request.generated += 1
            if token in self._eos_ids or request.generated >= request.max_new:
                request.release()

    def end(self) -> None:
        """Generation finished; ``generate_wave`` releases whoever is left."""


class _RowProcessors:
    def __init__(self, rows: _Rows) -> None:
        self._rows = rows

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        return self._rows.process(input_ids, scores)


class _RowStops:
    def __init__(self, rows: _Rows) -> None:
        self._rows = rows

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        return self._rows.stopped(input_ids)


def _decode_stream(loaded: LoadedModel, request: GenerationRequest) -> Iterator[Chunk]:
    """Token ids from the compute thread in, chunks out."""
    assembler = request.assembler
    decoder = IncrementalDecoder(loaded.tokenizer)
    scores = LogprobCollector(lambda token: loaded.tokenizer.decode([token]).encode())
    while True:
        item = request.tokens.get()
        if item is _END:
            break
        if isinstance(item, Failure):
            raise AdamError(f"generation failed: {item.error}") from item.error
        if isinstance(item, ScoredToken):
            token = item.token
            if token not in loaded.eos_ids:
                scores.add(item)
        else:
            token = item
        if token in loaded.eos_ids:
            assembler.end_of_turn()
            continue
        piece = assembler.token(decoder.push(token))
        if piece is not None:
            scores.attach(piece)
            yield piece
        if assembler.stopped:
            break
    closed_early = request.decoder is not None and request.decoder.closed_early
    last = assembler.finish(decoder.flush(), closed_early=closed_early)
    scores.attach(last)
    yield last


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


def request_processors(
    loaded: LoadedModel, config: GenerationConfig, constraint: ConstraintProcessor | None,
) -> tuple[Any, Any]:
    """One request's logits processors and its random generator (None: greedy).

    The processors run in one order: penalties, then the constraint (grammar mask,
    thinking budget, closing at the budget), then temperature/top-k/top-p/min-p; the row
    then samples from what is left (``_Rows``). Unset sampling values come from the
    model's ``generation_config`` (as ``generate`` would use them).
    """
    import torch
    from transformers import (
        LogitsProcessorList,
        MinPLogitsWarper,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    defaults = loaded.model.generation_config
    processors = LogitsProcessorList()
    penalties = Penalties.of(config)
    if penalties is not None:
        processors.append(_Penalties(penalties))
    if constraint is not None:
        processors.append(constraint)
    sample = not config.greedy and (config.sampling_given or bool(defaults.do_sample))
    if not sample:
        return processors, None
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
    generator = torch.Generator()
    if config.seed is not None:
        generator.manual_seed(config.seed)
    else:
        generator.seed()
    return processors, generator


def wave_config(loaded: LoadedModel, max_new: int) -> Any:
    """transformers' GenerationConfig for a wave: greedy over what the rows' processors
    left (they sample), none of ``generate``'s own samplers or penalties."""
    generation_config = copy.deepcopy(loaded.model.generation_config)
    generation_config.update(do_sample=False, temperature=1.0, top_k=None, top_p=1.0,
                             min_p=None, repetition_penalty=1.0, max_new_tokens=max_new,
                             max_length=None, pad_token_id=loaded.pad_id)
    return generation_config


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
    """``Penalties`` as a transformers logits processor: each row over the tokens it has
    generated (those after the batch's prompt width)."""

    def __init__(self, penalties: Penalties) -> None:
        self._penalties = penalties
        self._prompt_length: int | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._prompt_length is None:
            self._prompt_length = input_ids.shape[-1]
        for row in range(scores.shape[0]):
            self._penalties.apply(scores[row], input_ids[row, self._prompt_length:])
        return scores
