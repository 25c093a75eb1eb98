"""HuggingFaceModel: chat and embedding models run in-process with transformers.

Loads a hub repository (from the local Hugging Face cache first; downloads only when
online and allowed), a local model folder, or a GGUF file (converted once and kept,
``gguf_conversion``). The work is split by job: ``generation`` (streaming ``generate``),
``embedding`` (sentence-transformers pooling), ``devices`` (device and dtype defaults);
what it shares with the llama.cpp backend is in ``backends.local.in_process``.

All torch work runs on the process's one compute thread (``backends.local.compute``; it
explains the measured reason), which takes one job at a time; concurrent requests on one
model are generated together in one batch there (``generation``), never interleaved.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from adam_integrations.backends.local import compute
from adam_integrations.backends.local.huggingface.adapters import apply_peft_adapters
from adam_integrations.backends.local.huggingface.devices import (
    pick_device,
    pick_dtype,
    without_loading_bar,
)
from adam_integrations.backends.local.huggingface.embedding import (
    embed_texts,
    load_embedding_model,
    read_json,
)
from adam_integrations.backends.local.huggingface.generation import (
    Batcher,
    ConstraintProcessor,
    GenerationRequest,
    request_processors,
    stream_tokens,
)
from adam_integrations.backends.local.huggingface.gguf_conversion import converted_gguf
from adam_integrations.backends.local.huggingface.loaded import LoadedModel
from adam_integrations.backends.local.huggingface.onnx_int8 import OnnxEncoder
from adam_integrations.backends.local.huggingface.rerank import score_pairs
from adam_integrations.backends.local.in_process import InProcessBackend, parallel_slots
from adam_integrations.core.adapters import AdapterLike, chosen_adapters
from adam_integrations.core.chat_template import render_chat_template
from adam_integrations.core.errors import (
    InvalidRequestError,
    ModelLoadError,
    UnsupportedOperationError,
)
from adam_integrations.core.prompt import FIM_MARKERS, TemplateTraits, insert_unsupported
from adam_integrations.core.rerank import PairScores, document_tokens, rerank_prompt, yes_no_ids
from adam_integrations.core.stores.gguf_header import read_gguf_header
from adam_integrations.core.stores.hub import hub_file, hub_gguf, hub_snapshot
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    EmbeddingKind,
    GenerationConfig,
    ModelInfo,
    ModelSource,
    Purpose,
    TokenLogprob,
)
from adam_integrations.decoding.grammar import Grammars
from adam_integrations.decoding.logprobs import top_logprobs

logger = logging.getLogger(__name__)

DEFAULT_EMBED_BATCH_SIZE = 32
RERANK_WINDOW = 8192
"""The most tokens one (query, document) pair is read in: the model's own context when
shorter (Qwen3-Reranker's reference code reads 8192)."""

# Files a transformers model never needs when safetensors are present.
_HUB_IGNORE = ["*.gguf", "*.pt", "*.h5", "*.msgpack", "*.onnx", "onnx/*", "openvino/*",
               "*.ot", "coreml/*", "*.mlmodel", "flax_model*", "tf_model*", "rust_model*"]


class HuggingFaceModel(InProcessBackend[LoadedModel]):
    """A transformers model: chat/completion for causal LMs, embeddings for encoders.

    Example:
        >>> from adam_integrations.backends.local.huggingface import HuggingFaceModel
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
            Embedding models there keep fp32 weights and compute in bf16 (autocast:
            1.7x faster, vectors within cosine 0.9999 of fp32); "float32" gives
            sentence-transformers' exact vectors.
        allow_download: download hub models missing from the local cache (when online).
        cache_dir: the Hugging Face hub cache to use (default: huggingface_hub's).
        conversion_cache_dir: where converted GGUF models are kept.
        gguf_file: the GGUF file to use from a hub repository that holds several.
        embed_batch_size: texts per forward pass when embedding.
        chat_template: a Jinja chat template to use instead of the model's own.
        parallel: requests generated together in one batch (``generation``); default
            ``OLLAMA_NUM_PARALLEL``, else 4. More wait for the next batch.
        quantized: embedding models only: int8 on ONNX Runtime (``onnx_int8``: exported
            and quantized once per model, cached; needs ``adam-integrations[onnx]``).
            Off by default: vectors move further from fp32 than bf16's (quality figures in
            ``benchmarks/README.md``).
    """

    name = "huggingface"
    extra = "transformers"
    refusal_hint = (". Use a Hugging Face id ('hf:<org>/<repo>') or a path to a .gguf file "
                    "instead.")

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
        parallel: int | None = None,
        quantized: bool = False,
        adapters: Sequence[AdapterLike] | AdapterLike | None = None,
    ) -> None:
        super().__init__(model, purpose=purpose, chat_template=chat_template,
                         adapters=adapters)
        if not isinstance(embed_batch_size, int) or embed_batch_size < 1:
            raise InvalidRequestError(f"embed_batch_size must be >= 1, got {embed_batch_size!r}")
        self._device = device
        self._dtype = dtype
        if not isinstance(quantized, bool):
            raise InvalidRequestError(f"quantized must be True or False, got {quantized!r}")
        self._quantized = quantized
        self._allow_download = allow_download
        self._cache_dir = str(cache_dir) if cache_dir else None
        self._conversion_cache_dir = Path(conversion_cache_dir) if conversion_cache_dir else None
        self._gguf_file = gguf_file
        self._revision = revision
        self._embed_batch_size = embed_batch_size
        self._trust_remote_code = trust_remote_code
        self._parallel = parallel_slots(parallel)

    @classmethod
    def refuses(cls, source: ModelSource) -> str | None:
        if source.kind == "ollama":
            return (f"'ollama:{source.location}' is not in Ollama's store on this machine, "
                    "and transformers loads only files on disk")
        return None

    # -- lifecycle -------------------------------------------------------------------
    def unload(self) -> None:
        with self._load_lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None and loaded.device.startswith("cuda"):
            import torch

            del loaded
            compute.run(torch.cuda.empty_cache)

    def _load(self) -> LoadedModel:
        return compute.run(self._load_on_compute_thread)

    def _load_on_compute_thread(self) -> LoadedModel:
        started = time.perf_counter()
        folder, from_cache, gguf_path = self._local_folder()
        device = "cpu" if self._quantized and not self._device else pick_device(self._device)
        try:
            loaded = self._load_folder(folder, device)
        except InvalidRequestError:
            raise  # the request, not the cache, is wrong
        except Exception as error:  # a cached conversion that no longer loads, for any reason
            if not from_cache or gguf_path is None:
                raise
            logger.warning("the cached conversion %s does not load (%s); converting %s "
                           "again", folder, error, gguf_path.name)
            folder, from_cache = converted_gguf(gguf_path, self._conversion_cache_dir,
                                                replace=True)
            loaded = self._load_folder(folder, device)
        loaded.from_conversion_cache = from_cache
        if gguf_path is not None:
            loaded.gguf_path = gguf_path
            loaded.quantization = read_gguf_header(gguf_path).quantization
        loaded.load_seconds = time.perf_counter() - started
        logger.info("loaded %s on %s (%s) in %.2fs", self.source.name, device,
                    str(loaded.dtype).replace("torch.", ""), loaded.load_seconds)
        return loaded

    def _load_folder(self, folder: Path, device: str) -> LoadedModel:
        config = read_json(folder / "config.json")
        if (folder / "modules.json").exists() or not _is_causal(config):
            return load_embedding_model(folder, device, self._dtype, name=self.source.name,
                                        trust_remote_code=self._trust_remote_code,
                                        quantized=self._quantized)
        if self._quantized:
            raise InvalidRequestError(
                f"quantized=True is for embedding models; {self.source.name} is a chat "
                "model. For a quantized chat model, load a GGUF on the llama.cpp backend.")
        dtype = pick_dtype(device, self._dtype, for_embedding=False)
        return self._load_causal(folder, device, dtype)

    def _load_causal(self, folder: Path, device: str, dtype: Any) -> LoadedModel:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(
                folder, trust_remote_code=self._trust_remote_code
            )
            with without_loading_bar():
                model = AutoModelForCausalLM.from_pretrained(
                    folder, dtype=dtype, trust_remote_code=self._trust_remote_code
                ).to(device)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise ModelLoadError(
                f"transformers could not load {self.source.name} from {folder}: {error}"
            ) from error
        adapters = apply_peft_adapters(model, self.adapters, self.source.name) \
            if self.adapters else None
        model.eval()
        if self._chat_template is not None:
            tokenizer.chat_template = self._chat_template
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        vocab_size = model.get_output_embeddings().weight.shape[0]
        pad = next((t for t in (model.generation_config.pad_token_id, tokenizer.pad_token_id,
                                min(eos_ids) if eos_ids else 0) if t is not None), 0)
        loaded = LoadedModel(
            model=model, tokenizer=tokenizer, kind="causal", folder=folder, device=device,
            dtype=dtype, load_seconds=0.0, eos_ids=frozenset(eos_ids),
            parameter_count=sum(p.numel() for p in model.parameters()),
            family=getattr(model.config, "model_type", None),
            traits=TemplateTraits.of(getattr(tokenizer, "chat_template", None)),
            grammars=Grammars(_tokenizer_info(tokenizer, vocab_size, eos_ids), eos_ids),
            pad_id=int(pad[0] if isinstance(pad, list) else pad), adapters=adapters)
        loaded.batcher = Batcher(loaded, self._parallel)
        return loaded

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
        folder, from_cache = converted_gguf(gguf_path, self._conversion_cache_dir)
        return folder, from_cache, gguf_path

    def _ignore_patterns(self, repo_id: str) -> list[str]:
        from huggingface_hub import HfApi

        try:
            files = [s.rfilename for s in HfApi().model_info(repo_id).siblings or []]
        except Exception:
            return _HUB_IGNORE
        has_safetensors = any(name.endswith(".safetensors") for name in files)
        return [*_HUB_IGNORE, "*.bin"] if has_safetensors else _HUB_IGNORE

    # -- information -----------------------------------------------------------------
    def info(self) -> ModelInfo:
        loaded = self._ensure_loaded()
        config = loaded.model.config
        is_embedding = loaded.kind == "embedding"
        together = loaded.batcher or loaded.embeddings  # requests run at once
        return ModelInfo(
            name=self.source.name,
            backend=self.name,
            family=getattr(config, "model_type", None),
            parameter_count=loaded.parameter_count,
            context_window=loaded.max_length if is_embedding else _context_window(config),
            embedding_dimension=getattr(config, "hidden_size", None) if is_embedding else None,
            capabilities=("embedding",) if is_embedding else (
                "completion", "chat", "tools", *(("thinking",) if loaded.traits.thinking
                                                 else ()),
                *(("insert",) if _fim_tokens(loaded.tokenizer) else ())),
            path=self.source.location if self.source.kind != "hub" else str(loaded.folder),
            format="gguf" if loaded.gguf_path else "onnx" if self._quantized
            else "safetensors",
            quantization=loaded.quantization,
            device=loaded.device,
            dtype=str(loaded.autocast or loaded.dtype).replace("torch.", ""),
            details={
                "source": self.source.kind,
                "explanation": self.source.explanation,
                "load_seconds": loaded.load_seconds,
                "weights_dtype": str(loaded.dtype).replace("torch.", ""),
                "from_conversion_cache": loaded.from_conversion_cache,
                **_onnx_details(loaded.model),
                "pooling": loaded.pooling if is_embedding else None,
                "grammars": loaded.grammars.stats() if loaded.grammars else None,
                "parallel": loaded.batcher.parallel if loaded.batcher else None,
                "most_at_once": together.most_at_once if together else None,
            },
        )

    # -- generation ------------------------------------------------------------------
    def _stream_chat(
        self, messages: list[ChatMessage], config: GenerationConfig
    ) -> Iterator[Chunk]:
        loaded, load_seconds = self._ensure_loaded_timed()
        self._check_kind(loaded, "causal")
        prompt = self._render(loaded, messages, config)
        ids = loaded.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        return self._generate(loaded, ids, config, load_seconds, prompt)

    def _stream_complete(self, prompt: str, config: GenerationConfig,
                         suffix: str | None = None) -> Iterator[Chunk]:
        loaded, load_seconds = self._ensure_loaded_timed()
        self._check_kind(loaded, "causal")
        tokenizer = loaded.tokenizer
        if suffix is None:
            ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
            return self._generate(loaded, ids, config, load_seconds, prompt)
        fim = _fim_tokens(tokenizer)
        if fim is None:
            raise insert_unsupported(self.source.name)
        import torch

        def text(value: str) -> list[int]:  # user text: control tokens in it stay text
            return tokenizer(value, add_special_tokens=False, split_special_tokens=True
                             )["input_ids"]

        before, after, middle = fim
        ids = torch.tensor([[before, *text(prompt), after, *text(suffix), middle]])
        return self._generate(loaded, ids, config, load_seconds, prompt + suffix)

    def count_tokens(self, text: str) -> int:
        tokenizer = self._ensure_loaded().tokenizer
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- scoring (tools.evaluate, echo) ---------------------------------------------------
    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        # as _stream_complete reads a prompt: a BOS token first when the tokenizer adds one
        loaded = self._ensure_loaded()
        self._check_kind(loaded, "causal")
        return list(loaded.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    def detokenize(self, tokens: list[int]) -> str:
        tokenizer = self._ensure_loaded().tokenizer
        vocabulary = len(tokenizer)
        bad = [t for t in tokens if not isinstance(t, int) or not 0 <= t < vocabulary]
        if bad:
            raise InvalidRequestError(f"token ids {bad[:5]} are outside this model's "
                                      f"vocabulary (0 to {vocabulary - 1})", param="tokens")
        return str(tokenizer.decode(tokens, skip_special_tokens=False))

    def special_tokens(self) -> dict[str, str | None]:
        tokenizer = self._ensure_loaded().tokenizer
        return {name: getattr(tokenizer, name, None) or None
                for name in ("bos_token", "eos_token", "pad_token")}

    def score_prompt(self, prompt: str, top_logprobs: int = 0) -> list[TokenLogprob]:
        """See ``ModelBackend.score_prompt``: one forward pass over the prompt."""
        from adam_integrations.decoding.logprobs import prompt_logprobs, raw_logits, score

        tokens = self.tokenize(prompt)
        if not tokens:
            return []
        logits = self.token_logits(tokens)
        scores = [score(raw_logits(logits[i]), tokens[i + 1], top_logprobs)
                  for i in range(len(tokens) - 1)]
        tokenizer = self._ensure_loaded().tokenizer
        return prompt_logprobs(tokens, scores, lambda t: tokenizer.decode([t]).encode())

    def token_logits(self, tokens: list[int]) -> Any:
        """The next-token logits after each of ``tokens``, as a float32 numpy array
        (tokens x vocabulary), from one forward pass on the compute thread."""
        loaded = self._ensure_loaded()
        self._check_kind(loaded, "causal")

        def forward() -> Any:
            import torch

            if loaded.adapters is not None:
                loaded.adapters.use(loaded.adapters.defaults)
            with torch.inference_mode():
                ids = torch.tensor([tokens], device=loaded.device)
                return loaded.model(input_ids=ids).logits[0].float().cpu().numpy()

        return compute.run(forward)

    def _generating(self, loaded: LoadedModel) -> bool:
        return loaded.batcher is not None and loaded.batcher.busy()

    def _family(self, loaded: LoadedModel) -> str | None:
        return loaded.family

    def _traits(self, loaded: LoadedModel) -> TemplateTraits:
        return loaded.traits

    def _template(self, loaded: LoadedModel) -> str | None:
        template = getattr(loaded.tokenizer, "chat_template", None)
        return template if isinstance(template, str) else None

    def _apply_template(self, loaded: LoadedModel, messages: list[dict[str, Any]],
                        variables: dict[str, Any]) -> str:
        # the renderer llama.cpp uses too (transformers' environment, with limits), given
        # what apply_chat_template gives a template: the tokenizer's special tokens
        special = {key: value for key, value in loaded.tokenizer.special_tokens_map.items()
                   if isinstance(value, (str, list))}
        return render_chat_template(str(self._template(loaded)), messages,
                                    **{**special, **variables})

    def _check_kind(self, loaded: LoadedModel, kind: str) -> None:
        if loaded.kind == kind:
            return
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

    def _generate(
        self, loaded: LoadedModel, input_ids: Any, config: GenerationConfig, load_seconds: float,
        prompt: str,
    ) -> Iterator[Chunk]:
        """Check limits and build everything up front, so bad requests fail before the
        stream starts; the returned iterator then only generates."""
        adapters = chosen_adapters(config.lora, loaded.adapters.scales
                                   if loaded.adapters is not None else [])
        generation = self._generation(loaded, prompt, int(input_ids.shape[-1]),
                                      _context_window(loaded.model.config), config,
                                      load_seconds)
        tokenizer = loaded.tokenizer
        decoder = self._constrained_decoder(
            generation, config, loaded.grammars,
            lambda token: tokenizer.decode([token], skip_special_tokens=False))
        processor = ConstraintProcessor(decoder) if decoder is not None else None
        processors, generator = request_processors(loaded, config, processor)
        return stream_tokens(loaded, GenerationRequest(input_ids, config, generation.max_new,
                                                       processors, generator,
                                                       generation.assembler, decoder,
                                                       top_logprobs(config), adapters))

    # -- reranking -------------------------------------------------------------------
    def _rerank(self, query: str, documents: list[str],
                instruction: str | None) -> PairScores:
        """Qwen3-Reranker's method (``core.rerank``; ``huggingface.rerank``): the shared
        part read once, the documents in batches; a document too long for the model's
        context is cut, as the reference code truncates it."""
        loaded = self._ensure_loaded()
        self._check_kind(loaded, "causal")
        tokenizer = loaded.tokenizer

        def tokens(text: str) -> list[int]:
            return list(tokenizer.encode(text, add_special_tokens=False))

        yes, no = yes_no_ids(tokens, self.source.name)
        prompt = rerank_prompt(query, instruction)
        shared = list(tokenizer.encode(prompt.shared))  # a BOS where the tokenizer adds one
        answer = tokens(prompt.answer_start)
        window = min(_context_window(loaded.model.config) or RERANK_WINDOW, RERANK_WINDOW)
        middles, truncated = document_tokens(prompt, documents, tokens, window=window,
                                             used=len(shared) + len(answer),
                                             name=self.source.name)
        scores = score_pairs(loaded, shared, middles, answer, yes, no)
        return PairScores(scores, sum(len(shared) + len(m) + len(answer) for m in middles),
                          truncated)

    # -- embeddings ------------------------------------------------------------------
    def _embed(self, texts: list[str], kind: EmbeddingKind) -> list[list[float]]:
        loaded = self._ensure_loaded()
        self._check_kind(loaded, "embedding")
        return embed_texts(loaded, texts, kind, self._embed_batch_size)


def _fim_tokens(tokenizer: Any) -> tuple[int, int, int] | None:
    """The ids of the first spelling of ``FIM_MARKERS`` the vocabulary has whole."""
    for markers in FIM_MARKERS:
        ids = [tokenizer.convert_tokens_to_ids(marker) for marker in markers]
        if all(isinstance(i, int) and tokenizer.convert_ids_to_tokens(i) == marker
               for i, marker in zip(ids, markers, strict=True)):
            return ids[0], ids[1], ids[2]
    return None


def _onnx_details(model: Any) -> dict[str, Any]:
    if not isinstance(model, OnnxEncoder):
        return {}
    return {"onnx_model": str(model.path), "from_onnx_cache": model.from_cache}


def _tokenizer_info(tokenizer: Any, vocab_size: int, end_ids: set[int]) -> Any:
    """Makes xgrammar's view of a transformers tokenizer (on the first constrained request)."""
    def make() -> Any:
        import xgrammar

        return xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                                       stop_token_ids=sorted(end_ids))
    return make


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
