"""HuggingFaceModel: chat and embedding models run in-process with transformers.

Loads a hub repository (from the local Hugging Face cache first; downloads only when
online and allowed), a local model folder, or a GGUF file. transformers dequantizes a
GGUF on every load, which takes tens of seconds, so the converted model is kept once in
``<cache>/gguf-conversions/<sha256 of the GGUF>/`` and later loads read it from there.

All torch work runs on the process's one compute thread (``backends.compute``; it
explains the measured reason). Generation runs ``model.generate`` there and hands tokens
over a queue. When the consumer stops reading (break, close, async cancellation), a
stopping criterion ends ``generate`` at the next token step, and the stream waits for that
before it closes. The compute thread takes one job at a time, so concurrent requests
queue and never interleave.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adam_integrations.backends import compute
from adam_integrations.backends.grammar import GrammarCache, structural_tag, thinking_mode
from adam_integrations.catalog.qwen3 import with_qwen3_sampling
from adam_integrations.core.backend import EmbeddingKind, ModelBackend
from adam_integrations.core.decoding import ChunkAssembler
from adam_integrations.core.errors import (
    AdamError,
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.core.hub import hub_file, hub_gguf, hub_snapshot
from adam_integrations.core.output import ResponseParser
from adam_integrations.core.paths import cache_root
from adam_integrations.core.prompt import TemplateTraits, opens_thinking, template_inputs
from adam_integrations.core.resolver import ModelSource, Purpose, resolve
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    GenerationConfig,
    ModelInfo,
)
from adam_integrations.sharing.digest import file_sha256
from adam_integrations.sharing.gguf_header import read_gguf_header

logger = logging.getLogger(__name__)

CONVERSION_MARKER = "adam-conversion.json"
DEFAULT_EMBED_BATCH_SIZE = 32
DEFAULT_MAX_TOKENS = 512  # only for models whose config states no context window

# Files a transformers model never needs when safetensors are present.
_HUB_IGNORE = ["*.gguf", "*.pt", "*.h5", "*.msgpack", "*.onnx", "onnx/*", "openvino/*",
               "*.ot", "coreml/*", "*.mlmodel", "flax_model*", "tf_model*", "rust_model*"]


@dataclass
class _Loaded:
    """Everything that exists only while the model is in memory."""

    model: Any
    tokenizer: Any
    kind: str  # "causal" or "embedding"
    folder: Path
    device: str
    dtype: Any
    load_seconds: float
    from_conversion_cache: bool | None = None
    pooling: str = "mean"
    normalize: bool = False
    max_length: int | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    eos_ids: frozenset[int] = frozenset()
    gguf_path: Path | None = None
    quantization: str | None = None
    family: str | None = None
    traits: TemplateTraits = field(default_factory=lambda: TemplateTraits.of(None))
    grammars: GrammarCache | None = None  # set for chat models


class HuggingFaceModel(ModelBackend):
    """A transformers model: chat/completion for causal LMs, embeddings for encoders.

    Example:
        >>> from adam_integrations.backends.huggingface import HuggingFaceModel
        >>> chat = HuggingFaceModel()                      # the embedded SmolLM2 (GGUF)
        >>> answer = chat.chat([{"role": "user", "content": "Hi!"}], max_tokens=8)
        >>> isinstance(answer.text, str)
        True
        >>> HuggingFaceModel(purpose="embedding").embed(["hello"])[0][:1]  # doctest: +SKIP
        [-0.0627...]

    Args:
        model: a model reference (see ``core.resolver``) or a resolved ``ModelSource``;
            ``None`` picks the default for ``purpose``.
        purpose: which default to pick when ``model`` is None: "chat" or "embedding".
        device: "cuda", "mps", "cpu" or "cuda:1"...; default cuda > mps > cpu.
        dtype: "float32", "bfloat16", "float16"; default bf16/fp16 on GPUs, and on CPUs
            bf16 where the CPU computes it natively (measured faster), else fp32.
            Embedding models default to fp32 on CPU for exact vectors.
        allow_download: download hub models missing from the local cache (when online).
        cache_dir: the Hugging Face hub cache to use (default: huggingface_hub's).
        conversion_cache_dir: where converted GGUF models are kept.
        gguf_file: the GGUF file to use from a hub repository that holds several.
        embed_batch_size: texts per forward pass when embedding.
        chat_template: a Jinja chat template to use instead of the model's own.
    """

    name = "huggingface"

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelSource | None = None,
        *,
        purpose: Purpose = "chat",
        device: str | None = None,
        dtype: str | None = None,
        allow_download: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        conversion_cache_dir: str | os.PathLike[str] | None = None,
        gguf_file: str | None = None,
        revision: str | None = None,
        embed_batch_size: int = DEFAULT_EMBED_BATCH_SIZE,
        trust_remote_code: bool = False,
        chat_template: str | None = None,
    ) -> None:
        self.source = model if isinstance(model, ModelSource) else resolve(model, purpose=purpose)
        refusal = self.refuses(self.source)
        if refusal is not None:
            raise ModelNotFoundError(f"{refusal}. Use a Hugging Face id ('hf:<org>/<repo>') "
                                     "or a path to a .gguf file instead.")
        if not isinstance(embed_batch_size, int) or embed_batch_size < 1:
            raise InvalidRequestError(f"embed_batch_size must be >= 1, got {embed_batch_size!r}")
        self._device = device
        self._dtype = dtype
        self._allow_download = allow_download
        self._cache_dir = str(cache_dir) if cache_dir else None
        self._conversion_cache_dir = Path(conversion_cache_dir) if conversion_cache_dir else None
        self._gguf_file = gguf_file
        self._revision = revision
        self._embed_batch_size = embed_batch_size
        self._trust_remote_code = trust_remote_code
        self._chat_template = chat_template
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()

    @classmethod
    def refuses(cls, source: ModelSource) -> str | None:
        if source.kind == "ollama":
            return (f"'ollama:{source.location}' is not in Ollama's store on this machine, "
                    "and transformers loads only files on disk")
        return None

    def __repr__(self) -> str:
        state = "loaded" if self.is_loaded else "not loaded"
        return f"HuggingFaceModel({self.source.name!r}, {state})"

    # -- lifecycle -------------------------------------------------------------------
    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> None:
        self._ensure_loaded()

    def unload(self) -> None:
        with self._load_lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None and loaded.device.startswith("cuda"):
            import torch

            del loaded
            compute.run(torch.cuda.empty_cache)

    def _ensure_loaded(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._load_lock:
            if self._loaded is None:
                self._loaded = compute.run(self._load)
            return self._loaded

    def _load(self) -> _Loaded:
        started = time.perf_counter()
        folder, from_cache, gguf_path = self._local_folder()
        device = _pick_device(self._device)
        config = _read_json(folder / "config.json")
        if (folder / "modules.json").exists() or not _is_causal(config):
            loaded = self._load_embedding(folder, device)
        else:
            dtype = _pick_dtype(device, self._dtype, for_embedding=False)
            loaded = self._load_causal(folder, device, dtype)
        loaded.from_conversion_cache = from_cache
        if gguf_path is not None:
            loaded.gguf_path = gguf_path
            loaded.quantization = read_gguf_header(gguf_path).quantization
        loaded.load_seconds = time.perf_counter() - started
        logger.info("loaded %s on %s (%s) in %.2fs", self.source.name, device,
                    str(loaded.dtype).replace("torch.", ""), loaded.load_seconds)
        return loaded

    def _load_causal(self, folder: Path, device: str, dtype: Any) -> _Loaded:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(
                folder, trust_remote_code=self._trust_remote_code
            )
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=dtype, trust_remote_code=self._trust_remote_code
            ).to(device)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise ModelLoadError(
                f"transformers could not load {self.source.name} from {folder}: {error}"
            ) from error
        model.eval()
        if self._chat_template is not None:
            tokenizer.chat_template = self._chat_template
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        vocab_size = model.get_output_embeddings().weight.shape[0]
        return _Loaded(model=model, tokenizer=tokenizer, kind="causal", folder=folder,
                       device=device, dtype=dtype, load_seconds=0.0,
                       eos_ids=frozenset(eos_ids), family=getattr(model.config, "model_type",
                                                                  None),
                       traits=TemplateTraits.of(getattr(tokenizer, "chat_template", None)),
                       grammars=GrammarCache(tokenizer, vocab_size, sorted(eos_ids)))

    def _load_embedding(self, folder: Path, device: str) -> _Loaded:
        from transformers import AutoModel, AutoTokenizer

        layout = _SentenceTransformersLayout.read(folder)
        dtype = _pick_dtype(device, self._dtype, for_embedding=True)
        try:
            tokenizer = AutoTokenizer.from_pretrained(layout.transformer_folder)
            model = AutoModel.from_pretrained(
                layout.transformer_folder, dtype=dtype, trust_remote_code=self._trust_remote_code
            ).to(device)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise ModelLoadError(
                f"transformers could not load embedding model {self.source.name} "
                f"from {folder}: {error}"
            ) from error
        model.eval()
        if layout.pooling == "lasttoken":
            tokenizer.padding_side = "right"
        max_length = layout.max_length or getattr(model.config, "max_position_embeddings", None)
        return _Loaded(model=model, tokenizer=tokenizer, kind="embedding", folder=folder,
                       device=device, dtype=dtype, load_seconds=0.0, pooling=layout.pooling,
                       normalize=layout.normalize, max_length=max_length,
                       prompts=layout.prompts)

    # -- where the files are ---------------------------------------------------------
    def _local_folder(self) -> tuple[Path, bool | None, Path | None]:
        """A folder transformers can load, whether it came from the conversion cache, and
        the GGUF file it was converted from (None for safetensors models)."""
        source = self.source
        if source.kind == "folder":
            return Path(source.location), None, None
        where = {"revision": self._revision, "cache_dir": self._cache_dir,
                 "allow_download": self._allow_download}
        if source.kind == "gguf":
            gguf_path = Path(source.location)
        elif self._gguf_file or source.gguf_file:
            gguf_path = hub_file(source.location, self._gguf_file or source.gguf_file, **where)
        elif source.gguf_repo:
            gguf_path = hub_gguf(source.location, source.quantization, **where)
        else:
            return hub_snapshot(source.location, **where,
                                ignore_patterns=lambda: self._ignore_patterns(source.location)
                                ), None, None
        folder, from_cache = self._converted_gguf(gguf_path)
        return folder, from_cache, gguf_path

    def _ignore_patterns(self, repo_id: str) -> list[str]:
        from huggingface_hub import HfApi

        try:
            files = [s.rfilename for s in HfApi().model_info(repo_id).siblings or []]
        except Exception:
            return _HUB_IGNORE
        has_safetensors = any(name.endswith(".safetensors") for name in files)
        return [*_HUB_IGNORE, "*.bin"] if has_safetensors else _HUB_IGNORE

    def _converted_gguf(self, gguf_path: Path) -> tuple[Path, bool]:
        """The transformers folder converted from ``gguf_path``, converting on first use."""
        _check_transformers_can_read(gguf_path)
        digest = file_sha256(gguf_path)
        root = self._conversion_cache_dir or cache_root() / "gguf-conversions"
        target = root / digest
        if (target / CONVERSION_MARKER).exists():
            return target, True
        from transformers import AutoModelForCausalLM, AutoTokenizer

        logger.warning("converting %s from GGUF once (transformers dequantizes it); "
                       "later loads use %s", gguf_path.name, target)
        root.mkdir(parents=True, exist_ok=True)
        try:
            import torch

            tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
            )
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise ModelLoadError(
                f"transformers cannot load the GGUF file {gguf_path}: {error}. "
                "transformers dequantizes only some architectures; a newer transformers "
                "may support this one."
            ) from error
        # The tensors are already dequantized; the GGUF "quantizer" transformers attaches
        # only blocks save_pretrained.
        model.hf_quantizer = None
        with contextlib.suppress(AttributeError):
            del model.config.quantization_config
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{digest[:16]}-"))
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            (staging / CONVERSION_MARKER).write_text(json.dumps({
                "gguf": str(gguf_path), "sha256": digest, "converted_at": time.time(),
            }))
            try:
                os.replace(staging, target)
            except OSError:  # another process finished the same conversion first
                if not (target / CONVERSION_MARKER).exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target, False

    # -- information -----------------------------------------------------------------
    def info(self) -> ModelInfo:
        loaded = self._ensure_loaded()
        config = loaded.model.config
        is_embedding = loaded.kind == "embedding"
        return ModelInfo(
            name=self.source.name,
            backend=self.name,
            family=getattr(config, "model_type", None),
            parameter_count=sum(p.numel() for p in loaded.model.parameters()),
            context_window=loaded.max_length if is_embedding else _context_window(config),
            embedding_dimension=getattr(config, "hidden_size", None) if is_embedding else None,
            capabilities=("embedding",) if is_embedding else (
                "completion", "chat", "tools", *(("thinking",) if loaded.traits.thinking
                                                 else ())),
            path=self.source.location if self.source.kind != "hub" else str(loaded.folder),
            format="gguf" if loaded.gguf_path else "safetensors",
            quantization=loaded.quantization,
            device=loaded.device,
            dtype=str(loaded.dtype).replace("torch.", ""),
            details={
                "source": self.source.kind,
                "explanation": self.source.explanation,
                "load_seconds": loaded.load_seconds,
                "from_conversion_cache": loaded.from_conversion_cache,
                "pooling": loaded.pooling if is_embedding else None,
            },
        )

    # -- generation ------------------------------------------------------------------
    def _stream_chat(
        self, messages: list[ChatMessage], config: GenerationConfig
    ) -> Iterator[Chunk]:
        loaded, load_seconds = self._require_timed("causal")
        config = with_qwen3_sampling(config, loaded.family, loaded.traits.thinking_switch)
        prompt = self._render_chat(loaded, messages, config)
        ids = loaded.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        return self._generate(loaded, ids, config, load_seconds, prompt)

    def _stream_complete(self, prompt: str, config: GenerationConfig) -> Iterator[Chunk]:
        if config.tools:
            raise InvalidRequestError("tools need a conversation; use chat() instead of "
                                      "complete()")
        loaded, load_seconds = self._require_timed("causal")
        ids = loaded.tokenizer(prompt, return_tensors="pt")["input_ids"]
        return self._generate(loaded, ids, config, load_seconds, prompt)

    def count_tokens(self, text: str) -> int:
        tokenizer = self._ensure_loaded().tokenizer
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def render_chat(
        self, messages: list[ChatMessage], config: GenerationConfig | None = None
    ) -> str:
        """The exact prompt text the chat template makes of ``messages`` and ``config``."""
        return self._render_chat(self._require("causal"), messages, config or GenerationConfig())

    def _render_chat(
        self, loaded: _Loaded, messages: list[ChatMessage], config: GenerationConfig
    ) -> str:
        tokenizer = loaded.tokenizer
        dicts, variables = template_inputs(messages, config, loaded.traits, self.source.name)
        if not getattr(tokenizer, "chat_template", None):
            return _plain_chat_prompt(dicts)
        return tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=True,
                                             **variables)

    def _require_timed(self, kind: str) -> tuple[_Loaded, float]:
        """``_require``, and how long this call spent loading the model (0 when loaded)."""
        started = time.perf_counter()
        was_loaded = self.is_loaded
        loaded = self._require(kind)
        return loaded, 0.0 if was_loaded else time.perf_counter() - started

    def _require(self, kind: str) -> _Loaded:
        loaded = self._ensure_loaded()
        if loaded.kind != kind:
            if kind == "causal":
                raise UnsupportedOperationError(
                    f"{self.source.name} is an embedding model and cannot generate text; "
                    "load a chat model for chat/complete"
                )
            raise UnsupportedOperationError(
                f"{self.source.name} is a chat model, not an embedding model; embed with an "
                "embedding model instead, e.g. HuggingFaceModel('all-minilm') or "
                "ModelManager(embedding_model=...)"
            )
        return loaded

    def _generate(
        self, loaded: _Loaded, input_ids: Any, config: GenerationConfig, load_seconds: float,
        prompt: str,
    ) -> Iterator[Chunk]:
        """Check limits and build everything up front, so bad requests fail before the
        stream starts; the returned iterator then only generates."""
        prompt_tokens = int(input_ids.shape[-1])
        window = _context_window(loaded.model.config)
        room = (window - prompt_tokens) if window else None
        if room is not None and room <= 0:
            raise InvalidRequestError(
                f"the prompt has {prompt_tokens} tokens and fills the {window}-token context "
                f"window of {self.source.name}; shorten the prompt or the history"
            )
        # No max_tokens means "until the end of the turn or of the context window".
        limit = config.max_tokens or room or DEFAULT_MAX_TOKENS
        max_new = min(limit, room) if room else limit
        starts_thinking = opens_thinking(prompt)
        tag = structural_tag(config, thinking_mode(loaded.traits, config, starts_thinking))
        grammar = loaded.grammars.logits_processor(tag) if tag is not None else None
        request = _Request(
            input_ids=input_ids, config=config, max_new=max_new, load_seconds=load_seconds,
            settings=_generation_settings(loaded, config, max_new, grammar),
            parser=ResponseParser(tool_names=config.tool_names,
                                  parse_tool_calls=config.tools_active,
                                  starts_in_thinking=starts_thinking,
                                  forced_tool_call=bool(config.forced_tools)),
        )
        return self._token_stream(loaded, request)

    def _token_stream(self, loaded: _Loaded, request: _Request) -> Iterator[Chunk]:
        assembler = ChunkAssembler(request.config, request.parser,
                                   prompt_tokens=int(request.input_ids.shape[-1]),
                                   max_new=request.max_new, load_seconds=request.load_seconds)
        tokens: queue.SimpleQueue[Any] = queue.SimpleQueue()
        cancel = threading.Event()
        job = compute.submit(_run_generate, loaded, request, tokens, cancel)
        try:
            yield from _decode_stream(loaded, assembler, tokens)
        finally:
            cancel.set()  # a queued job that has not started yet ends at its first step
            futures.wait([job])

    # -- embeddings ------------------------------------------------------------------
    def _embed(self, texts: list[str], kind: EmbeddingKind) -> list[list[float]]:
        loaded = self._require("embedding")
        prompt = loaded.prompts.get(kind) or (loaded.prompts.get("passage", "")
                                              if kind == "document" else "")
        if prompt:
            texts = [prompt + text for text in texts]
        tokenizer = loaded.tokenizer
        encoded = tokenizer(texts, truncation=True, max_length=loaded.max_length,
                            add_special_tokens=True)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]), reverse=True)
        batches = [[encoded[i] for i in order[start:start + self._embed_batch_size]]
                   for start in range(0, len(order), self._embed_batch_size)]
        rows = compute.run(_embed_batches, loaded, batches)
        vectors: list[list[float]] = [[] for _ in texts]
        for index, row in zip(order, rows, strict=True):
            vectors[index] = row
        return vectors


# -- generation helpers --------------------------------------------------------------
_END = object()


@dataclass
class _Request:
    """Everything one generation needs, prepared before the stream starts."""

    input_ids: Any
    config: GenerationConfig
    max_new: int
    load_seconds: float
    settings: tuple[Any, Any]
    parser: ResponseParser


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _run_generate(loaded: _Loaded, request: _Request, tokens: queue.SimpleQueue[Any],
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
        tokens.put(_Failure(error))
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
    loaded: _Loaded, assembler: ChunkAssembler, tokens: queue.SimpleQueue[Any]
) -> Iterator[Chunk]:
    """Token ids from the compute thread in, chunks out."""
    decoder = IncrementalDecoder(loaded.tokenizer)
    while True:
        item = tokens.get()
        if item is _END:
            break
        if isinstance(item, _Failure):
            raise AdamError(f"generation failed: {item.error}") from item.error
        if item in loaded.eos_ids:
            assembler.end_of_turn()
            continue
        piece = assembler.token(decoder.push(item))
        if piece is not None:
            yield piece
        if assembler.stopped:
            break
    yield assembler.finish(decoder.flush())


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


def _generation_settings(
    loaded: _Loaded, config: GenerationConfig, max_new: int, grammar: Any
) -> tuple[Any, Any]:
    """transformers' GenerationConfig and the logits processors for one request.

    The processors are built here, in one order: penalties, then the grammar mask, then
    temperature/top-k/top-p/min-p. (Processors handed to ``generate`` run after its own
    samplers, where a top-k cut could leave the grammar no token; so ``generate``'s own
    samplers are switched off.)
    """
    from transformers import (
        LogitsProcessorList,
        MinPLogitsWarper,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    defaults = loaded.model.generation_config
    processors = LogitsProcessorList()
    if config.repetition_penalty not in (None, 1.0):
        processors.append(RepetitionPenaltyLogitsProcessor(config.repetition_penalty))
    if config.presence_penalty or config.frequency_penalty:
        processors.append(_PresenceFrequencyPenalty(config.presence_penalty or 0.0,
                                                    config.frequency_penalty or 0.0))
    if grammar is not None:
        processors.append(grammar)
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


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


class _PresenceFrequencyPenalty:
    """OpenAI-style penalties: subtract presence + frequency x count for generated tokens."""

    def __init__(self, presence: float, frequency: float) -> None:
        self._presence = presence
        self._frequency = frequency
        self._prompt_length: int | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._prompt_length is None:
            self._prompt_length = input_ids.shape[-1]
        generated = input_ids[:, self._prompt_length:]
        if generated.shape[-1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(
            1, generated, torch.ones_like(generated, dtype=scores.dtype)
        )
        return scores - self._frequency * counts - self._presence * (counts > 0).to(scores.dtype)


# -- embedding helpers ---------------------------------------------------------------
def _embed_batches(loaded: _Loaded, batches: list[list[list[int]]]) -> list[list[float]]:
    """Runs on the compute thread: pooled (and normalized) vectors, batch after batch."""
    import torch

    rows: list[list[float]] = []
    with torch.inference_mode():
        for batch in batches:
            padded = loaded.tokenizer.pad({"input_ids": batch}, return_tensors="pt")
            padded = {k: v.to(loaded.device) for k, v in padded.items()}
            hidden = loaded.model(**padded).last_hidden_state
            pooled = _pool(hidden, padded["attention_mask"], loaded.pooling)
            if loaded.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            rows.extend(pooled.float().cpu().tolist())
    return rows


@dataclass
class _SentenceTransformersLayout:
    """Pooling, normalization, length and prompts as a sentence-transformers folder says."""

    transformer_folder: Path
    pooling: str = "mean"
    normalize: bool = False
    max_length: int | None = None
    prompts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path) -> _SentenceTransformersLayout:
        layout = cls(transformer_folder=folder)
        modules = _read_json(folder / "modules.json")
        if not isinstance(modules, list):
            return layout  # a plain encoder: mean pooling, as sentence-transformers does
        for module in modules:
            kind = str(module.get("type", ""))
            path = folder / module.get("path", "")
            if kind.endswith("Transformer"):
                layout.transformer_folder = path
                bert_config = _read_json(path / "sentence_bert_config.json") or _read_json(
                    folder / "sentence_bert_config.json")
                if isinstance(bert_config, dict):
                    layout.max_length = bert_config.get("max_seq_length")
            elif kind.endswith("Pooling"):
                layout.pooling = _pooling_mode(_read_json(path / "config.json") or {})
            elif kind.endswith("Normalize"):
                layout.normalize = True
        st_config = _read_json(folder / "config_sentence_transformers.json")
        if isinstance(st_config, dict):
            layout.prompts = dict(st_config.get("prompts") or {})
        return layout


def _pooling_mode(config: dict[str, Any]) -> str:
    if config.get("pooling_mode"):
        return str(config["pooling_mode"])
    for mode in ("cls_token", "max_tokens", "lasttoken", "mean_tokens"):
        if config.get(f"pooling_mode_{mode}"):
            return {"cls_token": "cls", "max_tokens": "max", "mean_tokens": "mean"}.get(mode, mode)
    return "mean"


def _pool(hidden: Any, mask: Any, mode: str) -> Any:
    import torch

    if mode == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    if mode == "lasttoken":
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    summed = (hidden * weights).sum(dim=1)
    return summed / weights.sum(dim=1).clamp(min=1e-9)


# -- small helpers -------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _is_causal(config: Any) -> bool:
    architectures = (config or {}).get("architectures") or []
    return any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration"))
               for a in architectures)


def _context_window(config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _plain_chat_prompt(messages: list[dict[str, Any]]) -> str:
    """A readable prompt for models that ship no chat template (base models)."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


def _pick_device(requested: str | None) -> str:
    if requested:
        return requested
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}


def _pick_dtype(device: str, requested: str | None, *, for_embedding: bool) -> Any:
    import torch

    if requested:
        name = _DTYPES.get(str(requested).replace("torch.", "").lower())
        if name is None:
            raise InvalidRequestError(
                f"unknown dtype {requested!r}; use one of float32, bfloat16, float16"
            )
        return getattr(torch, name)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    if not for_embedding and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX).

    Measured on such a CPU (see README, "Speed"), bf16 decodes faster than fp32 because
    it halves the bytes read per token; without hardware support it is emulated and slower.
    """
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, check, lambda: False)()) for check in checks)


def _check_transformers_can_read(gguf_path: Path) -> None:
    """Refuse, with the reason, a GGUF that transformers cannot dequantize."""
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    header = read_gguf_header(gguf_path)
    architecture = header.architecture or "unknown"
    if architecture not in GGUF_CONFIG_MAPPING:
        import transformers

        supported = ", ".join(sorted(set(GGUF_CONFIG_MAPPING) - {"general", "tokenizer"}))
        raise ModelLoadError(
            f"{gguf_path.name} is a GGUF of architecture {architecture!r}, which transformers "
            f"{transformers.__version__} cannot load (it reads: {supported}). Use the "
            "model's safetensors repository with this backend instead."
        )
