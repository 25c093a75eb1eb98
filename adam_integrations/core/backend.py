"""ModelBackend: the interface every backend (transformers, llama.cpp, Ollama) implements.

A backend implements four primitives: ``_stream_chat``, ``_stream_complete``, ``_embed``
and ``info``, plus ``load``/``unload``/``is_loaded``, and ``_rerank`` where it can rerank.
Everything else is derived here, once:

- input validation (messages, prompt, generation options, embedding input);
- non-streaming calls, which are the stream collected (``chat``, ``complete``);
- async calls, which run the same stream on a worker thread (``achat``,
  ``astream_chat``, ...), so the event loop never blocks and cancelling the task stops
  generation. A backend with a native async client may override them.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, ClassVar

from adam_integrations.core.errors import (
    InvalidInputTypeError,
    InvalidRequestError,
    UnsupportedOperationError,
)
from adam_integrations.core.rerank import PairScores, Reranking, check_rerank, ranked
from adam_integrations.core.streaming import iterate_in_thread
from adam_integrations.core.tools import ResponseFormat
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    Completion,
    EmbeddingKind,
    GenerationConfig,
    ModelInfo,
    ModelSource,
    TokenLogprob,
    check_prompt,
    check_texts,
    coerce_messages,
    collect,
)

Messages = Iterable[ChatMessage | Mapping[str, Any]]


def make_config(config: GenerationConfig | None, options: Mapping[str, Any]) -> GenerationConfig:
    """A validated ``GenerationConfig`` from an optional base config and keyword options."""
    return (config or GenerationConfig()).merged(**options)


class ModelBackend(ABC):
    """One model served by one engine.

    Subclasses set ``name`` (the registry name) and implement the primitives. Models
    load lazily on first use; ``load()`` loads eagerly and ``unload()`` frees memory
    (the next call loads again).
    """

    name: ClassVar[str] = ""
    source: ModelSource
    """The model this backend object serves (set by the constructor)."""

    @classmethod
    def refuses(cls, source: ModelSource) -> str | None:
        """Why this backend cannot run ``source`` (None when it can). Used by the
        automatic backend choice; the constructor raises with the same reason."""
        return None

    # -- lifecycle -------------------------------------------------------------------
    @abstractmethod
    def load(self) -> None:
        """Load the model into memory (no-op when already loaded)."""

    @abstractmethod
    def unload(self) -> None:
        """Free the model's memory. The next call loads it again."""

    @property
    @abstractmethod
    def is_loaded(self) -> bool:
        """Whether the weights are in memory now."""

    @abstractmethod
    def info(self) -> ModelInfo:
        """What the model is and can do."""

    # -- primitives ------------------------------------------------------------------
    @abstractmethod
    def _stream_chat(
        self, messages: list[ChatMessage], config: GenerationConfig
    ) -> Iterator[Chunk]:
        """Stream an answer to a validated conversation."""

    @abstractmethod
    def _stream_complete(self, prompt: str, config: GenerationConfig,
                         suffix: str | None = None) -> Iterator[Chunk]:
        """Stream a continuation of a validated raw prompt (no chat template)."""

    @abstractmethod
    def _embed(self, texts: list[str], kind: EmbeddingKind) -> list[list[float]]:
        """Embed a validated, non-empty list of texts (queries or documents)."""

    def _rerank(self, query: str, documents: list[str],
                instruction: str | None) -> PairScores:
        """Score validated, non-empty ``documents`` against ``query``, in their order.
        A backend that cannot rerank keeps this refusal."""
        raise UnsupportedOperationError(
            f"the {self.name or type(self).__name__} backend cannot rerank; rerank with a "
            "model on the in-process backends (llama.cpp, transformers) or an "
            "OpenAI-compatible server with /v1/rerank")

    def sampling_preset(self, config: GenerationConfig) -> dict[str, Any]:
        """The model family's recommended sampling for this request's mode, as
        GenerationConfig fields (``{}``: none, the default; a server applies its own).
        ``served.ServedModel`` applies it when nothing else chose sampling."""
        return {}

    def chat_template(self) -> str | None:
        """The Jinja chat template the model is prompted with (None when it has none or the
        backend does not show it, as a server-side model); may load the model."""
        return None

    def thinking_control(self) -> str | None:
        """How ``think`` reaches the model (by level, on/off, always on), or None when it
        cannot think or the backend cannot tell; may load the model."""
        return None

    def count_tokens(self, text: str) -> int:
        """How many tokens the model's tokenizer makes of ``text`` (special tokens such as
        ``<|im_start|>`` count as one each, no BOS added)."""
        raise UnsupportedOperationError(f"the {self.name} backend cannot count tokens")

    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """``text``'s token ids as a completion reads it (``add_special_tokens``: with the
        BOS token first where the model adds one); may load the model."""
        raise UnsupportedOperationError(
            f"the {self.name} backend does not show its tokens; tokenize with an in-process "
            "backend (llamacpp, huggingface)")

    def detokenize(self, tokens: list[int]) -> str:
        """The text of ``tokens`` (special tokens spelled out)."""
        raise UnsupportedOperationError(
            f"the {self.name} backend does not show its tokens; detokenize with an "
            "in-process backend (llamacpp, huggingface)")

    def special_tokens(self) -> dict[str, str | None]:
        """The text of the model's ``bos_token``, ``eos_token`` and ``pad_token`` (None
        where it has none); may load the model."""
        raise UnsupportedOperationError(
            f"the {self.name} backend does not show its tokens; use an in-process backend "
            "(llamacpp, huggingface)")

    def score_prompt(self, prompt: str, top_logprobs: int = 0) -> list[TokenLogprob]:
        """Every token of ``prompt`` as a completion reads it (``tokenize``), with its log
        probability given the tokens before it and the ``top_logprobs`` most likely
        tokens there; the first token, with nothing before it, has ``logprob`` None. What
        ``/v1/completions`` echoes with ``logprobs`` (and what multiple-choice
        evaluations read)."""
        raise UnsupportedOperationError(
            f"the {self.name} backend does not score prompts (echo with logprobs); use an "
            "in-process backend (llamacpp, huggingface)")

    # -- public API, derived ---------------------------------------------------------
    def stream_chat(
        self, messages: Messages, config: GenerationConfig | None = None, **options: Any
    ) -> Iterator[Chunk]:
        """Stream the answer to ``messages`` chunk by chunk; the last chunk has usage.

        Closing the iterator early (``break``) stops generation.
        """
        return self._stream_chat(coerce_messages(messages), make_config(config, options))

    def chat(
        self, messages: Messages, config: GenerationConfig | None = None, **options: Any
    ) -> Completion:
        """The whole answer to ``messages``."""
        cfg = make_config(config, options)
        return collect(self.stream_chat(messages, cfg), model=self.info().name,
                       response_format=cfg.response_format)

    def stream_complete(
        self, prompt: str, config: GenerationConfig | None = None, *,
        suffix: str | None = None, **options: Any
    ) -> Iterator[Chunk]:
        """Stream a continuation of a raw prompt, without the chat template; with a
        ``suffix``, what goes between the prompt and the suffix (fill-in-the-middle, on
        models that have its tokens: ``"insert"`` in ``info().capabilities``)."""
        return self._stream_complete(check_prompt(prompt), _completion_config(config, options),
                                     _check_suffix(suffix))

    def complete(
        self, prompt: str, config: GenerationConfig | None = None, *,
        suffix: str | None = None, **options: Any
    ) -> Completion:
        """The whole continuation of a raw prompt (see ``stream_complete``)."""
        cfg = make_config(config, options)
        return collect(self.stream_complete(prompt, cfg, suffix=suffix),
                       model=self.info().name, response_format=cfg.response_format)

    def embed(self, texts: list[str], *, kind: EmbeddingKind = "document") -> list[list[float]]:
        """One embedding (plain floats) per text; ``embed([])`` is ``[]``.

        ``kind="query"`` uses the model's query prompt where it defines one (retrieval
        models such as Qwen3-Embedding embed queries and documents differently).
        """
        checked = check_texts(texts)
        return self._embed(checked, kind) if checked else []

    def rerank(self, query: str, documents: list[str], *, top_n: int | None = None,
               instruction: str | None = None) -> Reranking:
        """The ``documents`` ordered by relevance to ``query``, best first (``top_n`` of
        them when given), each with its index in ``documents`` and its score.
        ``instruction`` says what relevance means for Qwen3-Reranker's method (default:
        "Given a web search query, retrieve relevant passages that answer the query")."""
        checked, texts, count, how = check_rerank(query, documents, top_n, instruction)
        return ranked(self._rerank(checked, texts, how), texts, count, self.info().name)

    async def arerank(self, query: str, documents: list[str], *, top_n: int | None = None,
                      instruction: str | None = None) -> Reranking:
        """Async ``rerank``, computed on a worker thread."""
        checked, texts, count, how = check_rerank(query, documents, top_n, instruction)
        scores = await asyncio.to_thread(self._rerank, checked, texts, how)
        return ranked(scores, texts, count, self.info().name)

    async def astream_chat(
        self, messages: Messages, config: GenerationConfig | None = None, **options: Any
    ) -> AsyncIterator[Chunk]:
        """Async ``stream_chat``; cancelling the consuming task stops generation."""
        checked, cfg = coerce_messages(messages), make_config(config, options)
        async for chunk in iterate_in_thread(lambda: self._stream_chat(checked, cfg)):
            yield chunk

    async def achat(
        self, messages: Messages, config: GenerationConfig | None = None, **options: Any
    ) -> Completion:
        """Async ``chat``."""
        cfg = make_config(config, options)
        return await acollect(self.astream_chat(messages, cfg), self.info().name,
                              cfg.response_format)

    async def astream_complete(
        self, prompt: str, config: GenerationConfig | None = None, *,
        suffix: str | None = None, **options: Any
    ) -> AsyncIterator[Chunk]:
        """Async ``stream_complete``."""
        checked, cfg = check_prompt(prompt), _completion_config(config, options)
        after = _check_suffix(suffix)
        async for chunk in iterate_in_thread(
                lambda: self._stream_complete(checked, cfg, after)):
            yield chunk

    async def acomplete(
        self, prompt: str, config: GenerationConfig | None = None, *,
        suffix: str | None = None, **options: Any
    ) -> Completion:
        """Async ``complete``."""
        cfg = make_config(config, options)
        return await acollect(self.astream_complete(prompt, cfg, suffix=suffix),
                              self.info().name, cfg.response_format)

    async def aembed(
        self, texts: list[str], *, kind: EmbeddingKind = "document"
    ) -> list[list[float]]:
        """Async ``embed``, computed on a worker thread."""
        checked = check_texts(texts)
        return await asyncio.to_thread(self._embed, checked, kind) if checked else []


def _check_suffix(suffix: Any) -> str | None:
    """A fill-in-the-middle suffix: a string; empty means none (as Ollama reads it)."""
    if suffix is None or suffix == "":
        return None
    if not isinstance(suffix, str):
        raise InvalidInputTypeError(f"suffix must be a str, got {type(suffix).__name__}")
    return suffix


def _completion_config(config: GenerationConfig | None, options: Mapping[str, Any]
                       ) -> GenerationConfig:
    """``make_config`` for a raw completion, which has no conversation to call tools in."""
    merged = make_config(config, options)
    if merged.tools:
        raise InvalidRequestError("tools need a conversation; use chat() instead of complete()")
    return merged


async def acollect(
    chunks: AsyncIterator[Chunk], model: str = "", response_format: ResponseFormat | None = None
) -> Completion:
    """Async counterpart of ``collect``: gather a chunk stream into a ``Completion``."""
    gathered = [chunk async for chunk in chunks]
    return collect(gathered, model=model, response_format=response_format)
