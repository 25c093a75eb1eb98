"""Parallel slots on llama.cpp: many requests on one model decoded together.

One llama.cpp context holds ``slots`` sequences (llama.cpp's ``n_seq_max``), each with a
KV cache of its own of ``window`` tokens: the context of ``slots x window`` tokens is split
as ``llama-server --parallel N`` splits it (and as Ollama allocates ``num_ctx x
OLLAMA_NUM_PARALLEL``). Separate caches keep each sequence's attention to its own tokens;
a unified one (``--kv-unified``) would let slots share a prefix, but every sequence would
attend over every slot's cells, and llama.cpp copies between split caches only whole.

One decode thread per model runs the loop (continuous batching):

- waiting requests take a free slot between steps; finished or cancelled ones leave it;
- each step is one ``llama_decode`` over every generating request's next token plus a
  chunk of at most ``PROMPT_CHUNK`` tokens of prompts still being read, so a long new
  prompt never stalls the running streams for long;
- every request keeps its own sampler chain (seed, temperature, top-k...; greedy ones take
  the most likely token), its own penalties (``decoding.penalties``), its own
  grammar matcher (``ConstrainedDecoder``: one per sequence) and its own limits; the tokens
  go back to the request's reader over a queue, where stop strings and parsing happen;
- **prompt caching**: a slot keeps the KV cache of what it last read, and a request takes
  the free slot whose cache starts like its prompt (the next turn of a conversation, a
  RAG prompt with the same system prompt), reading only the rest, as llama-server picks
  slots by prompt similarity. ``cached`` says how many prompt tokens were reused;
- **prefixes shared across slots**: when another slot, busy or free, holds (or is reading)
  a longer start of the prompt than the slot the request got, the request copies that
  slot's cache into its own once the shared part is read (``llama_memory_seq_cp``: with
  one KV stream per sequence llama.cpp copies a whole stream, a memory copy far cheaper
  than computing ``MIN_SHARED`` tokens) and reads only the rest: eight users sending the
  same long system prompt, tool list or document at once compute it once, as vLLM's
  automatic prefix caching does. Meanwhile it waits, reading nothing, for the request that
  reads the shared part; models whose memory cannot be cut part way (recurrent layers)
  read their whole prompt.

Needs llama.cpp's memory API and per-sequence KV streams (llama-cpp-python 0.3.16 or newer:
``kv_unified`` is the switch for them).
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from adam_integrations.backends.local.in_process import PROMPT_CHUNK, common_prefix
from adam_integrations.backends.local.llama_cpp_private import check_internals, slot_context
from adam_integrations.core.errors import AdamError, ModelLoadError
from adam_integrations.core.streaming import Failure
from adam_integrations.decoding.constrained import ConstrainedDecoder
from adam_integrations.decoding.logprobs import raw_logits, score
from adam_integrations.decoding.penalties import Penalties

BATCH = 512
"""Tokens per ``llama_decode`` call (llama.cpp's ``n_batch``)."""
MIN_SHARED = 64
"""Prompt tokens another slot must hold beyond the request's own slot before its cache is
copied, and at least one in 64 of a slot's window: the copy moves a whole slot's window of
keys and values, whatever part of it is used, and computing a token costs more than moving
64 tokens' keys and values even for the 135M SmolLM2 (for larger models, far more)."""

END_OF_TURN = "end of turn"
"""Event: the model generated its end-of-turn token (not passed on as a token)."""
END_OF_ANSWER = "end of answer"
"""Event: the grammar completed the answer."""
FINISHED = "finished"
"""Event: the request left its slot; nothing follows."""


@dataclass(eq=False)
class SlotRequest:
    """One generation waiting for, or holding, a slot."""

    prompt: list[int]
    max_new: int
    sampler: Any
    """A llama-cpp-python sampler chain of this request's own (its seed and settings), or
    None: greedy, the most likely token."""
    decoder: ConstrainedDecoder | None
    penalties: Penalties | None = None
    top_logprobs: int | None = None
    """None: tokens come as ids; else as ``ScoredToken``s with this many alternatives."""
    events: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    """Generated token ids (``ScoredToken``s with logprobs), then
    ``END_OF_TURN``/``END_OF_ANSWER``, then ``FINISHED`` (or a ``Failure``)."""
    cached: int = 0
    """Prompt tokens reused from the slot's cache (known once admitted)."""
    released: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    slot: _Slot | None = None
    pending: list[int] = field(default_factory=list)
    """Prompt tokens still to read."""
    generated: list[int] = field(default_factory=list)
    """The tokens sampled so far (what the penalties look at)."""
    next_token: int = -1
    """The sampled token to feed at the next step."""
    source: _Slot | None = None
    """Another slot holding, or reading, the first ``shared`` prompt tokens: copied into
    this request's slot once they are read (until then this request reads nothing)."""
    shared: int = 0
    row: int = -1
    """This step's batch row holding the request's logits (-1: none)."""
    prompt_top: int | None = None
    """None: the prompt is only read; else each prompt token after the first is scored
    (its log probability given those before it, with this many alternatives) and the
    scores sent as one ``PromptScores`` event once the prompt is read. The whole prompt is
    then computed (no cached or shared prefix: those have no logits)."""
    scoring: list[tuple[int, int]] = field(default_factory=list)
    """This step's (batch row, the prompt token it predicts), while scoring the prompt."""
    prompt_scores: list[Any] = field(default_factory=list)
    adapters: tuple[tuple[int, float], ...] = ()
    """The LoRA adapters this request is decoded with (indices into the scheduler's
    ``adapters``, with scales): a step decodes only requests of one set
    (``_SlotEngine._one_adapter_set``)."""
    last_logits: tuple[int, ...] | None = None
    """With ``max_new`` 0: the token ids whose logits after the prompt's last token are
    sent as one ``LastLogits`` event (reranking by a yes/no answer)."""


@dataclass(frozen=True)
class LastLogits:
    """Event: the logits after the prompt's last token of the ids asked for
    (``SlotRequest.last_logits``), in their order."""

    values: tuple[float, ...]


@dataclass(frozen=True)
class PromptScores:
    """Event: the prompt's tokens after the first, scored (``ScoredToken``s), in order."""

    scores: list[Any]


@dataclass(eq=False)
class _Slot:
    sequence: int
    tokens: list[int] = field(default_factory=list)
    """The tokens whose keys and values this sequence holds, in order."""
    request: SlotRequest | None = None
    used_at: float = 0.0
    adapters: tuple[tuple[int, float], ...] = ()
    """The adapters ``tokens``' keys and values were computed with (reused only by
    requests with the same ones)."""


class SlotScheduler:
    """The slots of one loaded GGUF and the thread that decodes them; see the module doc.

    A handle on the decode thread's ``_SlotEngine``: the thread holds only the engine, so
    when the model is dropped without ``unload()`` the handle is collected, and the engine
    stops and frees its context.

    Args:
        llama: the loaded ``llama_cpp.Llama`` (its weights and context settings are used;
            its own small context is not).
        slots: sequences decoded together.
        window: tokens of context each slot has (prompt and answer).
    """

    def __init__(self, llama: Any, *, slots: int, window: int,
                 adapters: list[Any] | None = None) -> None:
        self._engine = _SlotEngine(llama, slots=slots, window=window, adapters=adapters)
        self._finalizer = weakref.finalize(self, self._engine.close)
        self._finalizer.atexit = False  # at exit, _stop_at_exit stops every engine
        self.slots, self.window = slots, window

    @property
    def most_at_once(self) -> int:
        """The most requests one step has decoded together so far."""
        return self._engine.most_at_once

    @most_at_once.setter
    def most_at_once(self, value: int) -> None:
        self._engine.most_at_once = value

    def submit(self, prompt: list[int], max_new: int, sampler: Any,
               decoder: ConstrainedDecoder | None,
               penalties: Penalties | None = None,
               top_logprobs: int | None = None,
               prompt_top: int | None = None,
               adapters: tuple[tuple[int, float], ...] = (),
               last_logits: tuple[int, ...] | None = None) -> SlotRequest:
        """Queue a generation of at most ``max_new`` tokens (0: only read the prompt) with
        the LoRA ``adapters`` (indices into this scheduler's, with scales); its tokens arrive on
        ``request.events`` (scored, with ``top_logprobs`` alternatives, unless it is
        None), after the prompt's scores when ``prompt_top`` is given (see
        ``SlotRequest.prompt_top``), or the logits of ``last_logits`` after the prompt
        (``SlotRequest.last_logits``)."""
        return self._engine.submit(prompt, max_new, sampler, decoder, penalties,
                                   top_logprobs, prompt_top, adapters, last_logits)

    def cancel(self, request: SlotRequest) -> None:
        """Stop ``request`` at the next step and wait until it has left its slot (then its
        sampler and decoder are no longer used)."""
        self._engine.cancel_soon(request)
        request.released.wait()

    def cancel_soon(self, request: SlotRequest) -> None:
        """Stop ``request`` at the next step (between two chunks of a long prompt too),
        without waiting: its reader then gets ``FINISHED``."""
        self._engine.cancel_soon(request)

    def busy(self) -> bool:
        """Whether any request is waiting or generating."""
        return self._engine.busy()

    def close(self) -> None:
        """Let running and waiting requests finish, stop the thread, free the context."""
        self._finalizer()


class _SlotEngine:
    """The decode thread's state: slots, queues, the llama.cpp context and batch. It keeps
    the ``Llama`` alive until its own context is freed (a context must go before its
    model)."""

    def __init__(self, llama: Any, *, slots: int, window: int,
                 adapters: list[Any] | None = None) -> None:
        import llama_cpp

        check_internals(llama)  # the memory API and the context the slots need
        self._lora = list(adapters or [])  # llama_adapter_lora_init's pointers
        self._llama = llama
        params = type(llama.context_params).from_buffer_copy(llama.context_params)
        params.n_ctx = window * slots
        params.n_batch = params.n_ubatch = BATCH
        params.n_seq_max = slots
        params.kv_unified = False
        params.flash_attn_type = -1
        try:
            self._context = slot_context(llama, params)
        except (ValueError, RuntimeError) as error:
            raise ModelLoadError(
                f"llama.cpp could not open a context of {slots} slots x {window} tokens: "
                f"{error}. Pass a smaller parallel= or n_ctx=.") from error
        self._memory = llama_cpp.llama_get_memory(self._context.ctx)
        self._adapters: tuple[tuple[int, float], ...] = ()  # the context's, now
        self._turn = 0
        self._batch = llama_cpp.llama_batch_init(BATCH, 0, 1)
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._n_vocab = llama.n_vocab()
        self._slots = [_Slot(sequence) for sequence in range(slots)]
        self._min_shared = max(MIN_SHARED, window // 64)
        if llama_cpp.llama_model_is_recurrent(llama.model) or \
                llama_cpp.llama_model_is_hybrid(llama.model):
            self._min_shared = window + 1  # a recurrent state cannot be cut: nothing shared
        self._waiting: list[SlotRequest] = []
        self._active: list[SlotRequest] = []
        self._state = threading.Condition()
        self._closing = False
        self.most_at_once = 0
        """The most requests one step has decoded together so far."""
        self._thread = threading.Thread(target=self._run, name="adam-llamacpp-slots",
                                        daemon=True)
        self._thread.start()
        _open.add(self)

    def _one_adapter_set(self, working: list[SlotRequest]) -> list[SlotRequest]:
        """The requests of one adapter set, the sets taking turns step by step, with
        that set applied to the context (a pointer swap: llama.cpp builds the next graph
        with it)."""
        import ctypes

        import llama_cpp

        sets = list(dict.fromkeys(request.adapters for request in working))
        chosen = sets[self._turn % len(sets)]
        self._turn += 1
        if chosen != self._adapters:
            pointers = (llama_cpp.llama_adapter_lora_p_ctypes * len(chosen))(
                *(self._lora[index] for index, _ in chosen))
            scales = (ctypes.c_float * len(chosen))(*(scale for _, scale in chosen))
            if llama_cpp.llama_set_adapters_lora(self._context.ctx, pointers, len(chosen),
                                                 scales):
                raise AdamError("llama.cpp refused to apply this request's LoRA adapters")
            self._adapters = chosen
        return [request for request in working if request.adapters == chosen]

    # -- the readers' side ---------------------------------------------------------
    def submit(self, prompt: list[int], max_new: int, sampler: Any,
               decoder: ConstrainedDecoder | None,
               penalties: Penalties | None, top_logprobs: int | None,
               prompt_top: int | None = None,
               adapters: tuple[tuple[int, float], ...] = (),
               last_logits: tuple[int, ...] | None = None) -> SlotRequest:
        if not prompt:
            raise AdamError("a generation needs at least one prompt token")
        request = SlotRequest(prompt=list(prompt), max_new=max_new, sampler=sampler,
                              decoder=decoder, penalties=penalties,
                              top_logprobs=top_logprobs, prompt_top=prompt_top,
                              adapters=adapters, last_logits=last_logits)
        with self._state:
            if self._closing:
                raise AdamError("the model was unloaded while this request started; "
                                "send it again (the model loads again)")
            self._waiting.append(request)
            self._state.notify_all()
        return request

    def cancel_soon(self, request: SlotRequest) -> None:
        with self._state:
            if not request.released.is_set():
                request.cancelled = True
                self._state.notify_all()

    def busy(self) -> bool:
        with self._state:
            return bool(self._waiting or self._active)

    def close(self) -> None:
        with self._state:
            self._closing = True
            self._state.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._free()

    def _free(self) -> None:
        import llama_cpp

        with self._state:
            batch, self._batch = self._batch, None
        if batch is not None:
            llama_cpp.llama_batch_free(batch)
            self._context.close()
            self._llama = None
        _open.discard(self)

    # -- the decode thread ---------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._state:
                while not (self._waiting or self._active or self._closing):
                    self._state.wait()
                self._leave_cancelled()
                self._admit()
                if not self._active:
                    if self._closing and not self._waiting:
                        return
                    continue
                working = list(self._active)
            try:
                self._step(working)
            except BaseException as error:  # every request in the batch learns of it
                self._fail(working, error)

    def _leave_cancelled(self) -> None:
        for request in [r for r in self._waiting if r.cancelled]:
            self._waiting.remove(request)
            self._release(request)
        for request in [r for r in self._active if r.cancelled]:
            self._release(request)

    def _admit(self) -> None:
        """Give waiting requests, first come first served, a free slot
        (``choose_slot``)."""
        while self._waiting:
            slot = choose_slot(self._slots, self._waiting[0].prompt,
                               self._waiting[0].adapters)
            if slot is None:
                return
            self._take(slot, self._waiting.pop(0))

    def _take(self, slot: _Slot, request: SlotRequest) -> None:
        # every prompt token computed when scoring; none reused from other adapters
        fresh = request.prompt_top is not None or slot.adapters != request.adapters
        keep = self._keep(slot, request.prompt,
                          0 if fresh else common_prefix(slot.tokens, request.prompt))
        slot.request, request.slot, slot.adapters = request, slot, request.adapters
        request.cached, request.pending = keep, request.prompt[keep:]
        source, shared = self._best_source(slot, request)
        if shared - keep >= self._min_shared and request.prompt_top is None:
            request.source, request.shared = source, shared
        self._active.append(request)

    def _keep(self, slot: _Slot, prompt: list[int], common: int) -> int:
        """Cut ``slot``'s cache after the first ``common`` tokens of ``prompt`` (all but
        the last prompt token at most: it is read again, for its logits); how many it
        keeps (none where this model's memory cannot be cut part way: recurrent layers)."""
        import llama_cpp

        keep = min(common, len(prompt) - 1)
        if not llama_cpp.llama_memory_seq_rm(self._memory, slot.sequence, keep, -1):
            llama_cpp.llama_memory_seq_rm(self._memory, slot.sequence, 0, -1)
            keep = 0
        del slot.tokens[keep:]
        return keep

    def _best_source(self, slot: _Slot, request: SlotRequest) -> tuple[_Slot | None, int]:
        """The other slot (of the same adapters) whose cache, with the prompt it is still
        reading, starts with the longest part of the request's prompt, and that length."""
        best, longest, prompt = None, 0, request.prompt
        for other in self._slots:
            if other is slot or other.adapters != request.adapters:
                continue
            planned = _planned(other)
            if planned[:1] != prompt[:1]:
                continue
            common = common_prefix(planned, prompt)
            if common > longest:
                best, longest = other, common
        return best, longest

    def _copy_shared(self, request: SlotRequest) -> bool:
        """Whether ``request`` may read now: its source slot holds the shared prefix (then
        copied into the request's slot), or will not (then it reads its own way). False
        while the source is still reading the shared part."""
        import llama_cpp

        source, slot = request.source, request.slot
        assert source is not None and slot is not None
        held = common_prefix(source.tokens, request.prompt)
        if held < request.shared and common_prefix(_planned(source),
                                                    request.prompt) >= request.shared:
            return False  # still being read
        request.source = None
        if held - request.cached < self._min_shared:
            return True
        llama_cpp.llama_memory_seq_cp(self._memory, source.sequence, slot.sequence, -1, -1)
        slot.tokens[:] = source.tokens
        keep = self._keep(slot, request.prompt, held)
        request.cached, request.pending = keep, request.prompt[keep:]
        return True

    def _step(self, working: list[SlotRequest]) -> None:
        """One ``llama_decode`` for every request in ``working``, then one token each for
        those whose logits it computed."""
        import llama_cpp

        self._batch.n_tokens = 0
        working = [r for r in working if r.source is None or self._copy_shared(r)]
        if not working:  # every request waits for a prefix another one reads: none left
            return
        if self._lora:  # a model without adapters has one set: nothing to choose
            working = self._one_adapter_set(working)
        self.most_at_once = max(self.most_at_once, len(working))
        reading = [r for r in working if r.pending]
        chunks = prompt_chunks(working)
        # in sequence order: llama.cpp splits a batch over separate KV streams into one
        # computation per run of consecutive sequence ids, in the order they come
        for request in sorted(working, key=_sequence):
            if request not in reading:
                request.row = self._add(request.slot, request.next_token, logits=True)
            elif request in chunks:
                scoring = request.prompt_top is not None
                for token in chunks[request]:
                    row = self._add(request.slot, token, logits=scoring)
                    read = len(request.slot.tokens)  # prompt tokens read, this one too
                    if scoring and read < len(request.prompt):
                        request.scoring.append((row, request.prompt[read]))
                if not request.pending and (request.max_new > 0 or request.last_logits):
                    # the prompt's last token gives the first logits
                    self._batch.logits[row], request.row = True, row
        batch = self._batch
        status = llama_cpp.llama_decode(self._context.ctx, batch)
        if status != 0:
            raise AdamError(f"llama.cpp could not decode a batch of {batch.n_tokens} tokens "
                            f"(llama_decode returned {status})")
        for request in working:
            if request.scoring:
                self._score_prompt(request)
            if request.pending or request.slot is None:
                continue
            if request.prompt_top is not None:  # the prompt is read: its scores go first
                request.events.put(PromptScores(request.prompt_scores))
                request.prompt_top = None
            if request.max_new == 0:  # it only read the prompt
                if request.last_logits is not None and request.row >= 0:
                    logits = self._logits(request.row)
                    request.events.put(LastLogits(tuple(float(logits[token])
                                                        for token in request.last_logits)))
                    request.row = -1
                self._finish(request)
            elif request.row >= 0:
                self._sample(request)

    def _score_prompt(self, request: SlotRequest) -> None:
        """Score the prompt tokens this step read, before anything changes the logits."""
        for row, token in request.scoring:
            request.prompt_scores.append(score(raw_logits(self._logits(row)), token,
                                               request.prompt_top or 0))
        request.scoring = []

    def _add(self, slot: _Slot | None, token: int, *, logits: bool) -> int:
        assert slot is not None
        batch, row = self._batch, self._batch.n_tokens
        batch.token[row], batch.pos[row] = token, len(slot.tokens)
        batch.n_seq_id[row], batch.seq_id[row][0] = 1, slot.sequence
        batch.logits[row] = logits
        batch.n_tokens = row + 1
        slot.tokens.append(token)
        return row

    def _sample(self, request: SlotRequest) -> None:
        import llama_cpp

        row, request.row = request.row, -1
        decoder, logits = request.decoder, self._logits(row)
        raw = None if request.top_logprobs is None else raw_logits(logits)
        if decoder is not None:
            import torch

            decoder.mask(torch.from_numpy(logits))
        if request.penalties is not None:
            request.penalties.apply(logits, request.generated)
        if request.sampler is None:
            token = int(logits.argmax())
        else:  # the chain reads the logits as masked and penalised above
            token = request.sampler.sample(self._context, row)
        if decoder is not None:
            decoder.accept(token)
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            request.events.put(END_OF_TURN)
            self._finish(request)
            return
        request.events.put(token if raw is None else score(raw, token, request.top_logprobs
                                                           or 0))
        request.generated.append(token)
        if decoder is not None and decoder.done:
            request.events.put(END_OF_ANSWER)
            self._finish(request)
        elif len(request.generated) >= request.max_new:
            self._finish(request)
        else:
            request.next_token = token

    def _logits(self, row: int) -> Any:
        """Row ``row``'s logits as a numpy array over llama.cpp's own buffer (no copy:
        masking and penalising it changes what the sampler reads)."""
        import llama_cpp
        import numpy as np

        pointer = llama_cpp.llama_get_logits_ith(self._context.ctx, row)
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))

    def _finish(self, request: SlotRequest) -> None:
        with self._state:
            self._release(request)

    def _release(self, request: SlotRequest) -> None:
        """(Under the state lock.) Free the request's slot, keeping its cache."""
        slot, request.slot = request.slot, None
        if slot is not None:
            slot.request, slot.used_at = None, time.monotonic()
        if request in self._active:
            self._active.remove(request)
        if not request.released.is_set():
            request.events.put(FINISHED)
            request.released.set()

    def _fail(self, working: list[SlotRequest], error: BaseException) -> None:
        """A decode failed: its requests end with the error, and the slots they held are
        emptied (their caches are in an unknown state)."""
        import llama_cpp

        with self._state:
            for request in working:
                slot = request.slot
                if slot is not None:
                    llama_cpp.llama_memory_seq_rm(self._memory, slot.sequence, 0, -1)
                    slot.tokens.clear()
                if not request.released.is_set():
                    request.events.put(Failure(error))
                self._release(request)


# -- the scheduling rules, apart from llama.cpp (tests/unit/backends/test_slot_rules.py) --
def choose_slot(slots: list[_Slot], prompt: list[int],
                adapters: tuple[tuple[int, float], ...] = ()) -> _Slot | None:
    """The free slot a request with ``prompt`` (and ``adapters``) takes (None: all are
    busy): the one whose cache, computed with the same adapters, shares the longest prefix
    with the prompt (so each adapter keeps its own cached prompts while slots allow);
    among equals, one next to busy slots
    (a step computes each run of consecutive busy sequences separately: see ``_step``),
    then the least recently used."""
    free = [slot for slot in slots if slot.request is None]
    if not free:
        return None

    def busy_neighbours(slot: _Slot) -> int:
        neighbours = slots[max(slot.sequence - 1, 0):slot.sequence + 2]
        return sum(other.request is not None for other in neighbours)

    def reusable(slot: _Slot) -> int:
        return common_prefix(slot.tokens, prompt) if slot.adapters == adapters else 0

    return max(free, key=lambda s: (reusable(s), busy_neighbours(s), -s.used_at))


def prompt_chunks(working: list[SlotRequest], batch: int = BATCH,
                  chunk: int = PROMPT_CHUNK) -> dict[SlotRequest, list[int]]:
    """The prompt tokens each request still reading reads this step (taken off its
    ``pending``), first come first read: what the batch holds besides one token per
    generating request, and at most ``chunk`` while any request generates, so a long new
    prompt never stalls the running streams for long."""
    reading = [r for r in working if r.pending]
    budget = batch - (len(working) - len(reading))
    if len(reading) < len(working):
        budget = min(budget, chunk)
    chunks: dict[SlotRequest, list[int]] = {}
    for request in reading:
        if budget > 0:
            chunks[request] = request.pending[:budget]
            request.pending = request.pending[budget:]
            budget -= len(chunks[request])
    return chunks


def _sequence(request: SlotRequest) -> int:
    assert request.slot is not None
    return request.slot.sequence


def _planned(slot: _Slot) -> list[int]:
    """What ``slot``'s cache holds once its request has read its prompt."""
    reading = slot.request.pending if slot.request is not None and slot.request.source is \
        None else []
    return slot.tokens + reading if reading else slot.tokens


_open: weakref.WeakSet[_SlotEngine] = weakref.WeakSet()


@atexit.register
def _stop_at_exit() -> None:
    """At exit, running generations stop at their next token and the decode threads end
    before llama.cpp's memory is freed (a decode must not run while it is)."""
    for scheduler in list(_open):
        with scheduler._state:
            for request in [*scheduler._waiting, *scheduler._active]:
                request.cancelled = True
            scheduler._closing = True
            scheduler._state.notify_all()
        with contextlib.suppress(RuntimeError):
            scheduler._thread.join(timeout=10)

