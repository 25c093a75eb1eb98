"""LlamaCppModel: GGUF chat models run in-process by llama.cpp (llama-cpp-python).

Loads a GGUF file in place (no conversion). The GGUF's header is read first
(``core.stores.gguf_header``), so a file that is not GGUF or is cut short is refused with a
clear error before llama.cpp touches it. Chat goes through the GGUF's own Jinja chat
template with the same prompt assembly, output parsing and usage as the transformers
backend (``core.prompt``, ``decoding.chunks``). Structured output and forced tool calls are
constrained by xgrammar (``decoding.grammar``), as on the transformers backend.

Shared with the transformers backend (``backends.local.in_process``): source checks, loading
once, prompt rendering, the context-window check, output parsing.

Generation runs in parallel slots (``backends.local.llamacpp_slots``): concurrent requests on
one model are decoded together in one batch per step, each in its own sequence of one
llama.cpp context, and a request reuses the KV cache of a slot whose last prompt starts
like its own. A stream reads its tokens from its slot; leaving the loop frees the slot at
the next step.
"""

from __future__ import annotations

import codecs
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from adam_integrations.backends.local.in_process import (
    DEFAULT_PARALLEL,
    Generation,
    InProcessBackend,
    requested_parallel,
)
from adam_integrations.backends.local.llama_cpp_private import sampler_chain
from adam_integrations.backends.local.llamacpp_slots import (
    END_OF_ANSWER,
    END_OF_TURN,
    FINISHED,
    LastLogits,
    PromptScores,
    SlotScheduler,
)
from adam_integrations.catalog.embedding import embedding_prompt
from adam_integrations.core.adapters import AdapterLike, chosen_adapters
from adam_integrations.core.chat_template import render_chat_template
from adam_integrations.core.errors import (
    AdamError,
    InvalidRequestError,
    ModelLoadError,
    UnsupportedOperationError,
)
from adam_integrations.core.hardware import available_memory, usable_cores
from adam_integrations.core.memory import GIB, kv_bytes_per_token, largest_context
from adam_integrations.core.prompt import TemplateTraits, insert_unsupported
from adam_integrations.core.rerank import (
    PairScores,
    document_tokens,
    rerank_prompt,
    yes_no_ids,
    yes_probability,
)
from adam_integrations.core.stores.gguf_header import GGUFHeader, read_gguf_header
from adam_integrations.core.stores.hub import hub_gguf
from adam_integrations.core.streaming import Failure, current_stop_signal
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    EmbeddingKind,
    GenerationConfig,
    ModelInfo,
    ModelSource,
    Purpose,
    TokenLogprob,
    check_embeddable,
)
from adam_integrations.decoding.constrained import ConstrainedDecoder
from adam_integrations.decoding.grammar import Grammars
from adam_integrations.decoding.logprobs import (
    LogprobCollector,
    ScoredToken,
    prompt_logprobs,
    top_logprobs,
)
from adam_integrations.decoding.penalties import Penalties

DEFAULT_CONTEXT = 8192  # capped by the model's own context length
MIN_CONTEXT = 512
EMBEDDING_CONTEXT = 2048  # tokens per text embedded; longer texts are truncated
OWN_CONTEXT = 256
"""The ``Llama`` object's own context (tokenizing, the sampler set-up): the slots have
their own context, so this one is kept tiny."""


@dataclass
class _Loaded:
    llama: Any
    header: GGUFHeader
    template: str | None
    traits: TemplateTraits
    variables: dict[str, str]
    load_seconds: float
    context_reason: str
    grammars: Grammars
    slots: SlotScheduler
    lora: list[tuple[Any, float]] = field(default_factory=list)
    """The adapters loaded (``adapters=``), llama.cpp's pointers with their scales."""

    def adapters_for(self, config: GenerationConfig) -> tuple[tuple[int, float], ...]:
        """The adapters a request decodes with (indices into ``lora``, with scales):
        ``config.lora``'s choice, else all at their scales."""
        return chosen_adapters(config.lora, [scale for _, scale in self.lora])

    def piece(self, token: int) -> str:
        """One token's text, special tokens written out (for markers such as </think>)."""
        return self.llama.detokenize([token], special=True).decode(errors="replace")


class LlamaCppModel(InProcessBackend[_Loaded]):
    """A GGUF model on llama.cpp, in-process.

    Example:
        >>> from adam_integrations.backends.local.llamacpp import LlamaCppModel
        >>> model = LlamaCppModel("smollm2")          # the embedded SmolLM2 GGUF
        >>> model.chat([{"role": "user", "content": "Hi"}], max_tokens=8).text  # doctest: +SKIP

    Args:
        model: a reference to a GGUF: a path, an embedded name, ``ollama:<name>`` (its
            blob in Ollama's store), ``hf:<org>/<repo>[:<quant>]`` (from the local
            Hugging Face cache, downloaded when missing and allowed), or a resolved source.
        n_ctx: context length of each request; default the model's, at most 8192, and on
            the CPU at most what the available RAM holds for every slot
            (``info().details["context_reason"]`` says why).
        parallel: requests decoded together (slots, each with an ``n_ctx`` window of KV
            cache); default ``OLLAMA_NUM_PARALLEL``, else 4, fewer when their caches would
            not fit the RAM. More requests wait for a free slot.
        n_threads: CPU threads; default the cores this process can use
            (``core.hardware.usable_cores``: physical cores, fewer under a CPU affinity
            or a container's CPU quota). On a CPU shared with other work, fewer threads
            than cores can decode much faster (``adam run --threads 1``).
        n_gpu_layers: layers to offload; default all when llama.cpp was built with a GPU.
        device: "cpu" keeps every layer on the CPU; "cuda", "gpu", "metal"... offload all
            (an error when this llama.cpp build cannot); default: the GPU when it can.
        chat_template: a Jinja chat template to use instead of the GGUF's own.
        allow_download: download a hub GGUF missing from the local cache (when online).
        cache_dir: the Hugging Face hub cache to use (default: huggingface_hub's).
        revision: the hub revision (branch, tag or commit).
    """

    name = "llamacpp"
    extra = "llamacpp"
    refusal_hint = "; name a .gguf file, or use model_type='huggingface' for this one"

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelSource | None = None,
        *,
        purpose: Purpose = "chat",
        n_ctx: int | None = None,
        parallel: int | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        device: str | None = None,
        chat_template: str | None = None,
        allow_download: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        adapters: Sequence[AdapterLike] | AdapterLike | None = None,
    ) -> None:
        super().__init__(model, purpose=purpose, chat_template=chat_template,
                         adapters=adapters)
        self._n_ctx = n_ctx
        self._parallel = requested_parallel(parallel)
        if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(
                n_threads, int) or n_threads < 1):
            raise InvalidRequestError(f"n_threads must be a whole number of at least 1, got "
                                      f"{n_threads!r}")
        self._n_threads = n_threads
        self._n_gpu_layers = _gpu_layers(n_gpu_layers, device)
        self._hub = {"allow_download": allow_download, "revision": revision,
                     "cache_dir": str(cache_dir) if cache_dir else None}
        self._path: str | None = self.source.location if self.source.kind == "gguf" else None
        self._sampler_lock = threading.Lock()  # a sampler takes its seed from the Llama
        self._embedder: Any = None
        self._embed_lock = threading.Lock()

    @classmethod
    def refuses(cls, source: ModelSource) -> str | None:
        if source.is_gguf:
            return None
        return f"llama.cpp runs GGUF files, and {source.name!r} is a {source.kind} model"

    # -- lifecycle -------------------------------------------------------------------
    def unload(self) -> None:
        with self._load_lock, self._embed_lock:
            loaded, self._loaded = self._loaded, None
            embedder, self._embedder = self._embedder, None
        if loaded is not None:
            loaded.slots.close()  # running requests finish first
        for llama in (loaded.llama if loaded else None, embedder):
            if llama is not None:
                llama.close()

    def _gguf_path(self) -> str:
        """The GGUF file on disk (a hub GGUF is fetched into the cache on first use)."""
        if self._path is None:
            self._path = str(hub_gguf(self.source.location, self.source.quantization,
                                      **self._hub))
        return self._path

    def _load(self) -> _Loaded:
        started = time.perf_counter()
        path = self._gguf_path()
        header = read_gguf_header(path)  # refuses non-GGUF and truncated files first
        _check_architecture_known(header, path)
        try:
            from llama_cpp import Llama
        except ImportError as error:
            raise ModelLoadError(
                "the llama.cpp backend needs llama-cpp-python; install it with "
                "pip install 'adam-integrations[llamacpp]'") from error

        slots, context, context_reason = _slots_and_window(
            header, path, self._n_ctx, self._parallel, offloaded=self._n_gpu_layers != 0)
        try:
            llama = Llama(model_path=path, n_ctx=OWN_CONTEXT, n_batch=OWN_CONTEXT,
                          n_threads=self._n_threads or usable_cores(),
                          n_gpu_layers=self._n_gpu_layers, verbose=False,
                          **_yarn(header, context))
        except (ValueError, RuntimeError) as error:
            raise ModelLoadError(
                f"llama.cpp could not load {path} (architecture "
                f"{header.architecture!r}): {error}. A newer llama-cpp-python may support it."
            ) from error
        try:
            lora = self._lora(llama, header, path)
            scheduler = SlotScheduler(llama, slots=slots, window=context,
                                      adapters=[pointer for pointer, _ in lora])
        except (ModelLoadError, InvalidRequestError):
            llama.close()
            raise
        template = self._chat_template or header.metadata.get("tokenizer.chat_template")
        variables = {
            "bos_token": llama.detokenize([llama.token_bos()], special=True).decode(
                errors="replace"),
            "eos_token": llama.detokenize([llama.token_eos()], special=True).decode(
                errors="replace"),
        }
        return _Loaded(llama=llama, header=header, template=template,
                       traits=TemplateTraits.of(template), variables=variables,
                       load_seconds=time.perf_counter() - started,
                       context_reason=context_reason,
                       grammars=Grammars(lambda: _tokenizer_info(llama), _end_ids(llama)),
                       slots=scheduler, lora=lora)

    def _lora(self, llama: Any, header: GGUFHeader, path: str) -> list[tuple[Any, float]]:
        """The adapters loaded into llama.cpp (a PEFT folder converted once to a GGUF
        adapter), each checked to fit this model first; freed with the model."""
        import llama_cpp

        from adam_integrations.sharing.adapter_gguf import adapter_for_gguf

        loaded = []
        for adapter in self.adapters:
            gguf = adapter_for_gguf(adapter.path, header, path)
            pointer = llama_cpp.llama_adapter_lora_init(llama.model, str(gguf).encode())
            if not pointer:
                raise ModelLoadError(f"llama.cpp could not load the adapter {adapter.path} "
                                     f"({gguf}) on {path}")
            loaded.append((pointer, adapter.scale))
        return loaded

    def info(self) -> ModelInfo:
        import llama_cpp

        loaded = self._ensure_loaded()
        header = loaded.header
        return ModelInfo(
            name=self.source.name, backend=self.name, family=header.architecture,
            parameter_count=int(llama_cpp.llama_model_n_params(loaded.llama.model)),
            context_window=loaded.slots.window,
            capabilities=("embedding",) if header.is_embedding_model else (
                "completion", "chat", "tools", *(("thinking",) if loaded.traits.thinking
                                                 else ()),
                *(("insert",) if _fim_tokens(loaded.llama) else ())),
            embedding_dimension=loaded.llama.n_embd(),
            path=self._gguf_path(), format="gguf", quantization=header.quantization,
            device="gpu" if self._n_gpu_layers else "cpu",
            details={"explanation": self.source.explanation,
                     "load_seconds": loaded.load_seconds,
                     "context_reason": loaded.context_reason,
                     "parallel": loaded.slots.slots,
                     "most_at_once": loaded.slots.most_at_once,
                     "grammars": loaded.grammars.stats()},
        )

    # -- generation ------------------------------------------------------------------
    def _check_generates(self, loaded: _Loaded) -> None:
        if loaded.header.is_embedding_model:
            raise UnsupportedOperationError(
                f"{self.source.name} is an embedding model ({loaded.header.architecture}); "
                "use embed() with it, and a chat model for chat")

    def count_tokens(self, text: str) -> int:
        return len(self._ensure_loaded().llama.tokenize(text.encode(), add_bos=False,
                                                       special=True))

    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        # as _stream_complete reads a prompt: BOS where the vocabulary adds one
        return list(self._ensure_loaded().llama.tokenize(
            text.encode(), add_bos=add_special_tokens, special=False))

    def detokenize(self, tokens: list[int]) -> str:
        llama = self._ensure_loaded().llama
        vocabulary = llama.n_vocab()
        bad = [t for t in tokens if not isinstance(t, int) or not 0 <= t < vocabulary]
        if bad:
            raise InvalidRequestError(f"token ids {bad[:5]} are outside this model's "
                                      f"vocabulary (0 to {vocabulary - 1})", param="tokens")
        return llama.detokenize(tokens, special=True).decode("utf-8", errors="replace")

    def special_tokens(self) -> dict[str, str | None]:
        import llama_cpp

        loaded = self._ensure_loaded()
        pad = llama_cpp.llama_vocab_pad(llama_cpp.llama_model_get_vocab(loaded.llama.model))
        return {"bos_token": loaded.variables["bos_token"] or None,
                "eos_token": loaded.variables["eos_token"] or None,
                "pad_token": self.detokenize([pad]) if pad >= 0 else None}

    def score_prompt(self, prompt: str, top_logprobs: int = 0) -> list[TokenLogprob]:
        """See ``ModelBackend.score_prompt``: the prompt read in a slot with the logits of
        every position kept (no cached prefix: it has none)."""
        loaded = self._ensure_loaded()
        self._check_generates(loaded)
        tokens = self.tokenize(prompt)
        if len(tokens) >= loaded.slots.window:
            raise InvalidRequestError(
                f"the prompt has {len(tokens)} tokens and fills the {loaded.slots.window}-"
                f"token context window of {self.source.name}; shorten it")
        request = loaded.slots.submit(tokens, 0, None, None, None, None,
                                      prompt_top=top_logprobs,
                                      adapters=loaded.adapters_for(GenerationConfig()))
        scores: list[ScoredToken] = []
        while (event := request.events.get()) is not FINISHED:
            if isinstance(event, Failure):
                raise AdamError(f"scoring the prompt failed: {event.error}") from event.error
            if isinstance(event, PromptScores):
                scores = event.scores
        return prompt_logprobs(tokens, scores,
                               lambda t: loaded.llama.detokenize([t], special=True))

    def _rerank(self, query: str, documents: list[str],
                instruction: str | None) -> PairScores:
        """Qwen3-Reranker's method (``core.rerank``) in the slots: every document is a
        request of its own, read together as the slots allow; the part shared by all (the
        judge's prompt, instruction and query) is read once and reused from the slot
        caches, so each document costs only its own tokens. A document too long for a
        slot's window is cut, as the reference code truncates it."""
        loaded = self._ensure_loaded()
        self._check_generates(loaded)
        llama = loaded.llama

        def tokens(text: str, *, first: bool = False) -> list[int]:
            return list(llama.tokenize(text.encode(), add_bos=first, special=True))

        yes, no = yes_no_ids(tokens, self.source.name)
        prompt = rerank_prompt(query, instruction)
        shared, answer = tokens(prompt.shared, first=True), tokens(prompt.answer_start)
        middles, truncated = document_tokens(
            prompt, documents, tokens, window=loaded.slots.window - 1,
            used=len(shared) + len(answer), name=self.source.name)
        pairs = [shared + middle + answer for middle in middles]
        adapters = loaded.adapters_for(GenerationConfig())
        requests = [loaded.slots.submit(pair, 0, None, None, adapters=adapters,
                                        last_logits=(yes, no)) for pair in pairs]
        scores = []
        try:
            for request in requests:
                found = None
                while (event := request.events.get()) is not FINISHED:
                    if isinstance(event, Failure):
                        raise AdamError(f"reranking failed: {event.error}") from event.error
                    if isinstance(event, LastLogits):
                        found = event.values
                if found is None:
                    raise AdamError("reranking stopped before every document was read "
                                    "(the model was unloaded); send it again")
                scores.append(yes_probability(yes_logit=found[0], no_logit=found[1]))
        finally:
            for request in requests:
                if not request.released.is_set():
                    loaded.slots.cancel_soon(request)
        return PairScores(scores, sum(map(len, pairs)), truncated)

    def _generating(self, loaded: _Loaded) -> bool:
        return loaded.slots.busy()

    def _family(self, loaded: _Loaded) -> str | None:
        return loaded.header.architecture

    def _traits(self, loaded: _Loaded) -> TemplateTraits:
        return loaded.traits

    def _template(self, loaded: _Loaded) -> str | None:
        return loaded.template

    def _apply_template(self, loaded: _Loaded, messages: list[dict[str, Any]],
                        variables: dict[str, Any]) -> str:
        return render_chat_template(str(loaded.template), messages, **loaded.variables,
                                    **variables)

    def _stream_chat(
        self, messages: list[ChatMessage], config: GenerationConfig
    ) -> Iterator[Chunk]:
        loaded, load_seconds = self._ensure_loaded_timed()
        self._check_generates(loaded)
        prompt = self._render(loaded, messages, config)
        tokens = loaded.llama.tokenize(prompt.encode(), add_bos=False, special=True)
        return self._generate(loaded, tokens, prompt, config, load_seconds)

    def _stream_complete(self, prompt: str, config: GenerationConfig,
                         suffix: str | None = None) -> Iterator[Chunk]:
        loaded = self._ensure_loaded()
        self._check_generates(loaded)
        llama = loaded.llama
        if suffix is None:
            tokens = llama.tokenize(prompt.encode(), add_bos=True, special=False)
            return self._generate(loaded, tokens, prompt, config, 0.0)
        fim = _fim_tokens(llama)
        if fim is None:
            raise insert_unsupported(self.source.name)
        before, after, middle = fim
        tokens = [*llama.tokenize(b"", add_bos=True, special=False), before,
                  *llama.tokenize(prompt.encode(), add_bos=False, special=False), after,
                  *llama.tokenize(suffix.encode(), add_bos=False, special=False), middle]
        return self._generate(loaded, tokens, prompt + suffix, config, 0.0)

    def _generate(self, loaded: _Loaded, tokens: list[int], prompt: str,
                  config: GenerationConfig, load_seconds: float) -> Iterator[Chunk]:
        generation = self._generation(loaded, prompt, len(tokens), loaded.slots.window,
                                      config, load_seconds)
        decoder = self._constrained_decoder(generation, config, loaded.grammars,
                                            loaded.piece)
        return self._token_stream(loaded, tokens, config, generation, decoder)

    def _token_stream(self, loaded: _Loaded, tokens: list[int], config: GenerationConfig,
                      generation: Generation, decoder: ConstrainedDecoder | None
                      ) -> Iterator[Chunk]:
        """Hand the prompt to a slot and turn the tokens it generates into chunks. The slot
        masks the logits with the decoder (when the answer has a form) and samples with
        this request's own llama.cpp sampler chain."""
        import llama_cpp

        assembler, llama = generation.assembler, loaded.llama
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        settings, sampler = _sampling(config), None
        if settings is not None:
            with self._sampler_lock:  # llama-cpp-python reads the seed from the Llama
                llama.set_seed(llama_cpp.LLAMA_DEFAULT_SEED if config.seed is None
                               else config.seed)
                sampler = sampler_chain(llama, settings)
        request = loaded.slots.submit(tokens, generation.max_new, sampler, decoder,
                                      Penalties.of(config), top_logprobs(config),
                                      adapters=loaded.adapters_for(config))
        scores = LogprobCollector(lambda t: llama.detokenize([t], special=True))
        stop = current_stop_signal()
        if stop is not None:  # a reader that leaves mid-prompt frees the slot at once
            stop.on_set(lambda: loaded.slots.cancel_soon(request))
        try:
            generated: list[int] = []
            while (event := request.events.get()) is not FINISHED:
                if isinstance(event, Failure):
                    raise AdamError(f"generation failed: {event.error}") from event.error
                if event is END_OF_TURN:
                    assembler.end_of_turn()
                    continue
                if event is END_OF_ANSWER:
                    assembler.end_of_answer()
                    continue
                if isinstance(event, ScoredToken):
                    scores.add(event)
                    event = event.token
                raw = text.decode(llama.detokenize([event], prev_tokens=generated[-8:]
                                                   or None))
                generated.append(event)
                piece = assembler.token(raw)
                if piece is not None:
                    scores.attach(piece)
                    yield piece
                if assembler.stopped:
                    break
            closed_early = decoder is not None and decoder.closed_early
            last = assembler.finish(text.decode(b"", final=True), closed_early=closed_early)
            if last.usage is not None:
                last.usage.cached_tokens = request.cached
            scores.attach(last)
            yield last
        finally:
            loaded.slots.cancel(request)  # waits until the slot no longer uses the sampler
            if sampler is not None:
                sampler.close()

    def _embed(self, texts: list[str], kind: EmbeddingKind) -> list[list[float]]:
        """Pooled, L2-normalised embeddings (as Ollama's /api/embed returns them).

        Embedding GGUFs pool as their header says (Qwen3-Embedding: last token, BERT
        models: mean or CLS); any other GGUF can embed too, with mean pooling. Known
        retrieval families get their query/document prompts (``catalog.embedding``).
        """
        loaded = self._ensure_loaded()
        prompt = embedding_prompt(loaded.header.metadata.get("general.name") or
                                  self.source.name, kind)
        if prompt:
            texts = [prompt + text for text in texts]
        with self._embed_lock:
            embedder = self._embedder or self._load_embedder(loaded)
            # as Llama.embed tokenizes; only a blank text can come out empty
            check_embeddable([len(embedder.tokenize(text.encode())) if not text.strip()
                              else 1 for text in texts])
            # normalize: L2; truncate: texts longer than the context are cut, as
            # transformers truncates
            vectors = embedder.embed(texts, normalize=True, truncate=True)
        return [[float(x) for x in vector] for vector in vectors]

    def _load_embedder(self, loaded: _Loaded) -> Any:
        """A second llama.cpp context in embedding mode over the same file (the weights
        are memory-mapped, so they are shared, not loaded twice)."""
        import llama_cpp

        header = loaded.header
        pooling = (llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED if header.field("pooling_type")
                   is not None else llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        context = min(header.context_length or EMBEDDING_CONTEXT, EMBEDDING_CONTEXT)
        self._embedder = llama_cpp.Llama(
            model_path=self._gguf_path(), embedding=True, pooling_type=pooling,
            n_ctx=context, n_batch=context, n_ubatch=context,
            n_threads=self._n_threads or usable_cores(), n_gpu_layers=self._n_gpu_layers,
            verbose=False)
        return self._embedder


def _slots_and_window(header: GGUFHeader, path: str, requested: int | None,
                      parallel: int | None, *, offloaded: bool) -> tuple[int, int, str]:
    """The slots, each one's context window, and why.

    The window: ``n_ctx`` when given; else the model's own, at most ``DEFAULT_CONTEXT`` (as
    Ollama opens a few thousand tokens unless asked). The slots: ``parallel`` when given
    (``requested_parallel``), else ``DEFAULT_PARALLEL``. On the CPU the KV cache of
    every slot's window must fit the available RAM (``core.memory``): a default number of
    slots shrinks first, then a default window.
    """
    native = header.context_length or DEFAULT_CONTEXT
    asked_slots = parallel
    slots = asked_slots or DEFAULT_PARALLEL
    if requested:
        beyond = (f", beyond the model's native {native}: YaRN rope scaling on"
                  if requested > native else "")
        context, reason = requested, f"n_ctx={requested} as asked{beyond}"
    elif native <= DEFAULT_CONTEXT:
        context, reason = native, f"the model's full context of {native} tokens"
    else:
        context = DEFAULT_CONTEXT
        reason = f"{DEFAULT_CONTEXT} of the model's {native} tokens (pass n_ctx for more)"
    per_token, available = kv_bytes_per_token(header), available_memory()
    if per_token and available and not offloaded:
        fits = largest_context(os.path.getsize(path), per_token, available)
        if not asked_slots and fits < slots * context:
            slots = max(1, min(slots, fits // context))
        if not requested and fits < slots * context:
            context = max(MIN_CONTEXT, fits // slots // 256 * 256)
            reason = (f"{context} tokens: the KV cache of a longer context for {slots} "
                      f"slot(s) would not fit the {available / GIB:.1f} GiB of RAM available")
    slot_reason = (f"{slots} slots as asked" if asked_slots else
                   f"{slots} slot(s): the default {DEFAULT_PARALLEL}"
                   + ("" if slots == DEFAULT_PARALLEL else ", fewer to fit the RAM"))
    return slots, context, f"{reason}; {slot_reason}"


def _yarn(header: GGUFHeader, context: int) -> dict[str, Any]:
    """YaRN rope scaling when the context asked for exceeds the model's native one (as
    the Qwen team advises: static scaling can hurt short texts, so only then)."""
    native = header.context_length
    if not native or context <= native:
        return {}
    import llama_cpp

    return {"rope_scaling_type": llama_cpp.LLAMA_ROPE_SCALING_TYPE_YARN,
            "yarn_orig_ctx": native, "rope_freq_scale": native / context}


def _check_architecture_known(header: GGUFHeader, path: str) -> None:
    """Refuse an architecture llama.cpp does not know before handing it the file.

    The list is gguf-py's (``gguf.MODEL_ARCH_NAMES``), which llama.cpp's project publishes
    with the same architecture table; an architecture known there but too new for the
    installed llama-cpp-python still fails inside llama.cpp, with the error caught.
    """
    import gguf

    known = set(gguf.MODEL_ARCH_NAMES.values())
    if header.architecture not in known:
        raise ModelLoadError(
            f"{os.path.basename(path)} is a GGUF of architecture {header.architecture!r}, "
            f"which llama.cpp cannot run (it knows {len(known)} architectures, such as "
            "llama, qwen3, qwen3moe, gemma3, bert). Check that the file is a model GGUF, or "
            "upgrade llama-cpp-python and gguf.")


def _fim_tokens(llama: Any) -> tuple[int, int, int] | None:
    """The fill-in-the-middle tokens (prefix, suffix, middle), as llama.cpp found them in
    the vocabulary when it loaded (the spellings of ``core.prompt.FIM_MARKERS`` and
    others); None when the model has none."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    found = (llama_cpp.llama_vocab_fim_pre(vocab), llama_cpp.llama_vocab_fim_suf(vocab),
             llama_cpp.llama_vocab_fim_mid(vocab))
    return None if min(found) < 0 else found


def _tokenizer_info(llama: Any) -> Any:
    """xgrammar's view of a GGUF's vocabulary: every token as the bytes it writes. Control
    tokens (end of turn, chat markers) count as special and are never allowed by a grammar;
    user-defined ones such as Qwen3's <tool_call> and <think> are text."""
    import ctypes

    import llama_cpp
    import xgrammar

    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    buffer = ctypes.create_string_buffer(256)
    pieces: list[bytes] = []
    for token in range(llama.n_vocab()):
        if llama_cpp.llama_vocab_get_attr(vocab, token) & (
                llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNUSED):
            pieces.append(b"")
            continue
        size = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, True)
        pieces.append(buffer.raw[:max(size, 0)])
    return xgrammar.TokenizerInfo(pieces, xgrammar.VocabType.RAW, vocab_size=llama.n_vocab(),
                                  stop_token_ids=_end_ids(llama))


def _end_ids(llama: Any) -> list[int]:
    """The tokens that end a turn (end of generation: EOS, EOT, <|im_end|>, ...)."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    return [token for token in range(llama.n_vocab())
            if llama_cpp.llama_vocab_is_eog(vocab, token)]


def _sampling(config: GenerationConfig) -> dict[str, Any] | None:
    """llama.cpp sampling arguments, or None for greedy decoding (temperature 0 or unset:
    the slot takes the most likely token itself). Penalties are applied by the slot
    (``decoding.penalties``), not by this chain.

    Unset values follow Ollama's defaults (top_k 40, top_p 0.95 here as in llama.cpp,
    min_p 0.05), since Ollama users run the same GGUFs this way.
    """
    if config.temperature is None or config.greedy:
        return None
    return {
        "temp": config.temperature,
        "top_k": config.top_k if config.top_k is not None else 40,
        "top_p": config.top_p if config.top_p is not None else 0.95,
        "min_p": config.min_p if config.min_p is not None else 0.05,
    }


def _gpu_layers(requested: int | None, device: str | None) -> int:
    """Layers to offload: ``requested`` when given, none for device "cpu", else all when
    this llama.cpp build can offload (checked when a GPU device is named)."""
    if requested is not None:
        return requested
    if device is not None and device.lower() == "cpu":
        return 0
    try:
        import llama_cpp
    except ImportError:
        return 0  # loading reports the missing package
    offloads = bool(llama_cpp.llama_supports_gpu_offload())
    if device is not None and not offloads:
        raise ModelLoadError(
            f"device={device!r}: this llama-cpp-python build runs on the CPU only; reinstall "
            "it with GPU support (CMAKE_ARGS='-DGGML_CUDA=on' pip install llama-cpp-python "
            "--force-reinstall), use device='cpu', or model_type='huggingface'")
    return -1 if offloads else 0
