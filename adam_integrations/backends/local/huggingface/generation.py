"""Generation on transformers: concurrent requests on one model decoded together on the
compute thread (continuous batching), each row's tokens streamed back over its own queue
and turned into chunks.

The loop (``Batcher``), one step at a time:

- waiting requests start at the next step, up to ``parallel`` at once (no waiting for a
  batch to finish: a new user's first token does not wait for earlier answers);
- each new request reads its prompt alone, in chunks: while other rows are generating, at
  most ``PROMPT_CHUNK`` prompt tokens per step, so a long prompt never stalls the running
  streams for long (vLLM's chunked prefill; llama.cpp's slots do the same);
- once read, the row joins the running batch: its keys and values are padded on the left
  to the batch's width (and the batch's, when it is longer), and one forward pass then
  decodes every row's next token, with an attention mask hiding the padding and each row's
  own positions (as ``generate`` decodes a left-padded batch). Models whose cache is not
  plain full attention (sliding windows, linear attention) cannot be padded that way: each
  of their rows decodes in a forward pass of its own, in the same loop;
- **prompt caching**: the keys and values of the last ``parallel`` prompts read are kept
  (references to tensors the cache no longer changes, not copies); a request whose prompt
  starts with one of them (the same system prompt, tool list or document; the conversation
  so far) starts from that part and reads only the rest. Requests that arrive together are
  read one after another, so the second finds the first one's prompt. ``cached`` says how
  many prompt tokens were reused. Not for caches that cannot be cut (linear attention);
- every row keeps its own logits processors (penalties, grammar mask,
  temperature/top-k/top-p/min-p), its own random generator (so a seed gives the same
  answer alone or batched), its own token limit and its own cancellation: a row that ends
  (end of turn, limit, the reader left) leaves the batch at the next step, and its reader
  is released at once;
- **LoRA adapters chosen per request** (llama-server's ``lora``, ``adam serve --lora``):
  rows batch with the rows that run the same adapters; each group's forward pass applies
  its own (``ActiveAdapters.use``), and kept prompts serve only requests with the same
  adapters (vLLM batches adapters per row instead, with kernels of its own).

The loop runs as a job on the compute thread and gives the thread up between steps when
other torch work waits (another model, embeddings), then carries on.

transformers' own continuous batching (``generate_batch``, ``init_continuous_batching``)
takes temperature, top-k and top-p per request only, with no logits processors: no grammar,
no penalties, no min-p; and it runs on a thread of its own, where this backend keeps all
torch work on one thread (``backends.local.compute``).
"""

from __future__ import annotations

import inspect
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from adam_integrations.backends.local import compute
from adam_integrations.backends.local.huggingface.loaded import LoadedModel
from adam_integrations.backends.local.in_process import PROMPT_CHUNK, common_prefix
from adam_integrations.core.errors import AdamError
from adam_integrations.core.streaming import Failure
from adam_integrations.core.types import Chunk, GenerationConfig
from adam_integrations.decoding.chunks import ChunkAssembler
from adam_integrations.decoding.constrained import ConstrainedDecoder
from adam_integrations.decoding.logprobs import (
    LogprobCollector,
    ScoredToken,
    raw_logits,
    score,
)
from adam_integrations.decoding.penalties import Penalties

_END = object()

PROMPT_BATCH = 512
"""Prompt tokens read per step when no row is generating."""
MIN_CACHED = 16
"""Prompt tokens a kept prompt must share with a new one to be used."""


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
    alternatives."""
    adapters: tuple[tuple[int, float], ...] = ()
    """The LoRA adapters the request runs with (``(index, scale)``; ``chosen_adapters``)."""
    tokens: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    cancel: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    """Set once the compute thread no longer uses this request."""
    generated: int = 0
    cached: int = 0
    """Prompt tokens whose keys and values came from a kept prompt."""

    def release(self, failure: BaseException | None = None) -> None:
        """(Compute thread.) The row is over: its reader gets the end, nothing else runs
        for it."""
        if self.released.is_set():
            return
        if failure is not None:
            self.tokens.put(Failure(failure))
        self.tokens.put(_END)
        self.released.set()


class _Row:
    """A request on the compute thread: its prompt read so far, its tokens, its cache
    while it reads alone."""

    def __init__(self, request: GenerationRequest) -> None:
        import torch

        self.request = request
        prompt = request.input_ids[0]
        self.prompt_length = int(prompt.shape[-1])
        self.ids = torch.empty((1, self.prompt_length + request.max_new), dtype=torch.long)
        self.ids[0, :self.prompt_length] = prompt
        self.length = self.prompt_length
        """Tokens in ``ids``: the prompt, then those generated."""
        self.read = 0
        """Prompt tokens read so far."""
        self.cache: Any = None
        self.next_token = -1

    @property
    def done(self) -> bool:
        return self.request.released.is_set()


@dataclass(eq=False)
class _KeptPrompt:
    """A prompt read earlier: its tokens and each layer's keys and values."""

    tokens: list[int]
    layers: list[tuple[Any, Any]]
    adapters: tuple[tuple[int, float], ...]
    """The adapters the keys and values were computed with: only requests with the same
    ones may use them."""


@dataclass(eq=False)
class _Group:
    """Rows decoded by one forward pass: their cache (padded on the left to one width),
    the attention mask that hides the padding, and the adapters they all run with."""

    rows: list[_Row]
    cache: Any
    mask: Any
    adapters: tuple[tuple[int, float], ...]
    padded: bool = False


class Batcher:
    """The requests of one loaded model and the loop that decodes them; see the module
    docstring."""

    def __init__(self, loaded: LoadedModel, parallel: int) -> None:
        self.parallel = parallel
        self.most_at_once = 0
        """The most rows one forward pass has decoded together so far."""
        self._loaded = loaded
        self._waiting: list[GenerationRequest] = []
        self._reading: list[_Row] = []
        self._groups: list[_Group] = []
        self._kept: list[_KeptPrompt] = []
        """Prompts read lately, the most recently used last."""
        self._scheduled = False
        self._lock = threading.Lock()
        self._keeps_logits = "logits_to_keep" in inspect.signature(
            loaded.model.forward).parameters
        self._cache_name = cache_name(loaded.model)

    def submit(self, request: GenerationRequest) -> None:
        with self._lock:
            self._waiting.append(request)
            schedule, self._scheduled = not self._scheduled, True
        if schedule:
            compute.submit(self._run)

    @property
    def waiting(self) -> int:
        """Requests queued that have not started yet."""
        with self._lock:
            return len(self._waiting)

    def busy(self) -> bool:
        """Whether a request is waiting or generating."""
        with self._lock:
            rows = [*self._reading, *(row for group in self._groups for row in group.rows)]
            return bool(self._waiting) or not all(row.done for row in rows)

    def withdraw(self, request: GenerationRequest) -> bool:
        """Take a request that has not started out of the queue (True when it was there)."""
        with self._lock:
            if request in self._waiting:
                self._waiting.remove(request)
                request.release()
                return True
        return False

    # -- the compute thread ------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                running = self._reading or any(g.rows for g in self._groups)
                if not (self._waiting or running):
                    self._scheduled = False
                    return
                free = self.parallel - len(self._reading) - sum(
                    len(g.rows) for g in self._groups)
                starting, self._waiting = self._waiting[:free], self._waiting[free:]
                self._reading.extend(_Row(request) for request in starting)
            try:
                self._step()
            except BaseException as error:  # every running request learns of it
                self._fail(error)
            if compute.others_waiting():  # other torch work runs between two steps
                compute.submit(self._run)
                return

    def _step(self) -> None:
        import torch

        self._leave_ended()
        with torch.inference_mode():
            budget = PROMPT_CHUNK if self._groups else PROMPT_BATCH
            for row in list(self._reading):  # first come, first read
                if budget <= 0:
                    break
                budget -= self._read(row, budget)
            for group in self._groups:
                self._decode(group)
        self._leave_ended()

    def _leave_ended(self) -> None:
        """Rows whose reader left, or that the process's exit stops, are released; ended
        rows leave their groups, and columns only padding leave the cache."""
        stopping = compute.shutting_down.is_set()
        for row in [*self._reading, *(r for g in self._groups for r in g.rows)]:
            if stopping or row.request.cancel.is_set():
                row.request.release()
        self._reading = [row for row in self._reading if not row.done]
        for group in self._groups:
            keep = [i for i, row in enumerate(group.rows) if not row.done]
            if len(keep) < len(group.rows) and keep:
                _select_rows(group, keep)
            group.rows = [group.rows[i] for i in keep]
        self._groups = [group for group in self._groups if group.rows]

    def _read(self, row: _Row, budget: int) -> int:
        """Read up to ``budget`` more prompt tokens of ``row``; once the whole prompt is
        read, choose its first token and put it in a group. Returns the tokens read."""
        if row.cache is None:
            self._start_from_kept(row)
        chunk = row.ids[:, row.read:min(row.prompt_length, row.read + budget)]
        options = {"logits_to_keep": 1} if self._keeps_logits else {}
        self._use(row.request.adapters)
        output = self._loaded.model(input_ids=chunk.to(self._loaded.device), use_cache=True,
                                    **{self._cache_name: row.cache}, **options)
        row.cache, row.read = output[self._cache_name], row.read + int(chunk.shape[-1])
        if row.read < row.prompt_length:
            return int(chunk.shape[-1])
        self._reading.remove(row)
        self._keep(row)
        if self._choose(row, output.logits[:, -1, :]):
            self._join(row)
        return int(chunk.shape[-1])

    def _keep(self, row: _Row) -> None:
        """Keep ``row``'s prompt, read whole, for later requests that start like it."""
        if not paddable(row.cache):
            return
        tokens, adapters = row.ids[0, :row.prompt_length].tolist(), row.request.adapters
        self._kept = [kept for kept in self._kept if kept.adapters != adapters
                      or kept.tokens != tokens[:len(kept.tokens)]]
        self._kept.append(_KeptPrompt(tokens, [(layer.keys, layer.values)
                                               for layer in row.cache.layers], adapters))
        del self._kept[:-self.parallel]

    def _start_from_kept(self, row: _Row) -> None:
        """Start ``row``'s cache from the kept prompt, computed with the same adapters,
        that shares most of its prompt (all but its last token at most: that one is read
        for the logits)."""
        from transformers.cache_utils import DynamicCache

        prompt = row.ids[0, :row.prompt_length - 1].tolist()
        best, shared = None, 0
        for kept in self._kept:
            if kept.adapters != row.request.adapters:
                continue
            common = common_prefix(kept.tokens, prompt)
            if common > shared:
                best, shared = kept, common
        if best is None or shared < MIN_CACHED:
            return
        self._kept.remove(best)
        self._kept.append(best)
        cache = DynamicCache(config=self._loaded.model.config)
        for index, (keys, values) in enumerate(best.layers):
            cache.update(keys[:, :, :shared], values[:, :, :shared], index)
        row.cache, row.read, row.request.cached = cache, shared, shared

    def _join(self, row: _Row) -> None:
        import torch

        cache, row.cache = row.cache, None
        mask = torch.ones((1, row.length), dtype=torch.long, device=self._loaded.device)
        adapters = row.request.adapters
        group = next((group for group in self._groups if group.adapters == adapters),
                     None) if paddable(cache) else None
        if group is None:
            self._groups.append(_Group([row], cache, mask, adapters))
            return
        group.padded |= _merge(group, cache, mask)
        group.rows.append(row)

    def _decode(self, group: _Group) -> None:
        import torch

        device = self._loaded.device
        self.most_at_once = max(self.most_at_once, len(group.rows))
        tokens = torch.tensor([[row.next_token] for row in group.rows], device=device)
        group.mask = torch.cat([group.mask, torch.ones((len(group.rows), 1),
                                                       dtype=torch.long, device=device)], 1)
        padding = {"attention_mask": group.mask, "position_ids": torch.tensor(
            [[row.length - 1] for row in group.rows], device=device)} if group.padded else {}
        self._use(group.adapters)
        output = self._loaded.model(input_ids=tokens, use_cache=True,
                                    **{self._cache_name: group.cache}, **padding)
        group.cache = output[self._cache_name]
        for i, row in enumerate(group.rows):
            self._choose(row, output.logits[i:i + 1, -1, :])

    def _use(self, adapters: tuple[tuple[int, float], ...]) -> None:
        """Have the next forward pass apply ``adapters`` (a no-op when they already do)."""
        if self._loaded.adapters is not None:
            self._loaded.adapters.use(adapters)

    def _choose(self, row: _Row, logits: Any) -> bool:
        """Run ``row``'s processors on its next-token logits, pick the token, hand it to
        the reader; whether the row goes on."""
        import torch

        request = row.request
        scores = logits.to(dtype=torch.float32, device="cpu", copy=True)
        raw = None if request.top_logprobs is None else raw_logits(scores[0])
        ids = row.ids[:, :row.length]
        for processor in request.processors:
            scores = processor(ids, scores)
        if request.generator is not None:
            probabilities = torch.softmax(scores[0], dim=-1)
            token = int(torch.multinomial(probabilities, 1, generator=request.generator))
        else:
            token = int(scores[0].argmax())
        request.tokens.put(token if raw is None else score(raw, token,
                                                           request.top_logprobs or 0))
        request.generated += 1
        if token in self._loaded.eos_ids or request.generated >= request.max_new:
            request.release()
            return False
        row.ids[0, row.length], row.length, row.next_token = token, row.length + 1, token
        return True

    def _fail(self, error: BaseException) -> None:
        for row in [*self._reading, *(r for g in self._groups for r in g.rows)]:
            row.request.release(error)
        self._reading, self._groups = [], []


def cache_name(module: Any) -> str:
    """What this transformers calls the cache of ``module``'s forward, as argument and
    output (``cache`` from 5.25; ``past_key_values`` before)."""
    return "cache" if "cache" in inspect.signature(module.forward).parameters \
        else "past_key_values"


def paddable(cache: Any) -> bool:
    """Whether ``cache`` holds plain full-attention keys and values (which can be padded
    on the left and batched), rather than sliding windows or recurrent states."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _merge(group: _Group, cache: Any, mask: Any) -> bool:
    """Add one row's ``cache`` (and ``mask``) to ``group``'s, padding the shorter on the
    left; whether the group now has padding."""
    import torch
    from torch.nn.functional import pad

    width = max(group.mask.shape[1], mask.shape[1])
    before, after = width - group.mask.shape[1], width - mask.shape[1]
    for ours, theirs in zip(group.cache.layers, cache.layers, strict=True):
        ours.keys = torch.cat([pad(ours.keys, (0, 0, before, 0)),
                               pad(theirs.keys, (0, 0, after, 0))])
        ours.values = torch.cat([pad(ours.values, (0, 0, before, 0)),
                                 pad(theirs.values, (0, 0, after, 0))])
    group.mask = torch.cat([pad(group.mask, (before, 0)), pad(mask, (after, 0))])
    return group.padded or before > 0 or after > 0


def _select_rows(group: _Group, keep: list[int]) -> None:
    """Keep only rows ``keep`` of ``group``'s cache and mask, and drop the columns on the
    left that are padding in every row left."""
    import torch

    group.cache.batch_select_indices(torch.tensor(keep, device=group.mask.device))
    group.mask = group.mask[keep]
    used = group.mask.sum(0).nonzero()
    first = int(used[0]) if len(used) else 0
    if first and paddable(group.cache):
        for layer in group.cache.layers:
            layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
        group.mask = group.mask[:, first:]
    group.padded = bool((group.mask == 0).any())


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
    if last.usage is not None:
        last.usage.cached_tokens = request.cached
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
