"""ModelManager: one object for a chat model and an embedding model, over any backend.

It resolves a model reference, picks the backend from the registry, and offers plain
string-in/string-out calls (``generate_response``, ``generate_stream``, ``embed``) next to
the richer ``chat`` that returns a ``Completion`` with usage. The embedding model is a
second backend object, created on first use. Backend objects come from the process-wide
``loaded_models`` table, so managers naming the same model share one loaded copy.

Every text call is one stream (``stream_chat`` / ``astream_chat``); the non-streaming
calls collect it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any

from adam_integrations.catalog.defaults import resolve_model, shareable_gguf
from adam_integrations.catalog.domains import DomainProfile, get_domain
from adam_integrations.catalog.profile import ModelFacts, model_facts
from adam_integrations.catalog.selection import MIN_SPEED
from adam_integrations.core.adapters import coerce_adapters
from adam_integrations.core.backend import ModelBackend, acollect, make_config
from adam_integrations.core.errors import (
    AdamError,
    InvalidInputTypeError,
    InvalidRequestError,
    UnknownOptionError,
)
from adam_integrations.core.loaded import loaded_models, parse_keep_alive
from adam_integrations.core.registry import AUTO, BackendChoice, accepted_options, registry
from adam_integrations.core.rerank import Reranking
from adam_integrations.core.resolver import REMOTE_ENGINES, remote_source
from adam_integrations.core.stores.ollama_store import ModelLayers
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    Completion,
    EmbeddingKind,
    GenerationConfig,
    ModelInfo,
    ModelSource,
    Purpose,
    check_prompt,
    collect,
)
from adam_integrations.served import ServedModel, stored_layers

Messages = Iterable[ChatMessage | Mapping[str, Any]]


class ModelManager:
    """One chat model and one embedding model, ready to use.

    Example:
        >>> from adam_integrations import ModelManager
        >>> manager = ModelManager()   # the default model for this machine
        >>> reply = manager.generate_response("Say hi.", max_tokens=16)
        >>> for piece in manager.generate_stream("Count to three.", max_tokens=16):
        ...     print(piece, end="")                                    # doctest: +SKIP
        >>> len(manager.embed("one text"))
        384

    Args:
        model_type: the backend: "auto" (default: llama.cpp for a GGUF on a machine
            without a GPU, transformers otherwise; see ``ModelRegistry.choose``),
            "huggingface" (alias "hf", "transformers"), "llamacpp" (alias "llama.cpp",
            "gguf"), "ollama" (a model on an Ollama server, or ``adam serve``; an
            ``ollama:<name>`` not in a local store goes there by itself), or any
            registered name. It applies to the chat model; the embedding
            model uses it too when that backend can run it, else the automatic choice.
        model_size: a catalog alias such as "qwen3_small"; ``model`` wins when both given.
        domain: a domain profile ("general", "code", ...) whose system prompt opens a
            conversation that does not open with its own, and whose sampling (e.g.
            temperature 0.2 for code) is used when neither the call nor the model's
            stored parameters choose any (``served.ServedModel`` has the order).
        model: any model reference (see ``core.resolver``); None = default for this machine,
            resolved on first use (``catalog.defaults``), so a manager used only for
            embeddings never probes the hardware for a chat model.
        share_with_ollama: put the model's GGUF into Ollama's store as a hardlink (no
            second copy), so ``ollama run`` can use it (``adam_integrations.sharing``);
            ``shared_as`` then holds its Ollama name. A transformers checkpoint
            (safetensors) is converted to a GGUF once, kept in the cache, and shared.
        embedding_model: the model reference for ``embed``; None = the default embedder.
        rerank_model: the model reference for ``rerank`` (a Qwen3-Reranker, or any chat
            model, by Qwen3-Reranker's method); None = the embedded chat model, which
            ranks weakly.
        min_speed: with no model named, the pick for this machine is the largest that
            decodes at this many tokens/s or more (estimated; default 10).
        keep_alive: unload the models after this much idle time (seconds or "5m"; 0 =
            after each request); None or negative keeps them loaded until ``unload()``.
        **backend_options: passed to the backend class (e.g. ``device``, ``dtype`` for
            transformers, ``n_ctx`` for llama.cpp); the embedding model gets those its
            backend takes. ``adapters`` (both in-process backends): LoRA adapters applied
            unmerged, PEFT folders (``adam tune``'s) or GGUF LoRA files, each a path or
            ``(path, scale)`` (``core.adapters``). ``base_url`` (with ``api_key``,
            ``timeout``, ``max_retries``) names a server, as ChatOpenAI's and ChatOllama's
            do: with ``model_type`` "openai", "vllm", "sglang" or "llamacpp-server" (or
            "auto") the model is the engine's own id there, never looked up in the
            catalog; with "ollama" (or an ``ollama:<name>`` model) it is the Ollama
            server's address.
    """

    def __init__(
        self,
        model_type: str = AUTO,
        model_size: str | None = None,
        domain: str | None = None,
        model: str | None = None,
        share_with_ollama: bool = False,
        embedding_model: str | None = None,
        rerank_model: str | None = None,
        keep_alive: float | str | None = None,
        min_speed: float = MIN_SPEED,
        **backend_options: Any,
    ) -> None:
        model_type, self._remote, backend_options = _server_request(
            model_type, model or model_size, backend_options)
        self.model_type = model_type
        self.domain: DomainProfile | None = get_domain(domain) if domain else None
        self.keep_alive = parse_keep_alive(keep_alive)
        self._backend_options = backend_options
        self._reference = model or model_size
        self._min_speed = min_speed
        if model_type.lower() != AUTO:
            registry.check_options(model_type, backend_options)
        else:
            registry.check_known_options(backend_options)
        if backend_options.get("adapters"):  # a missing adapter fails here, not at first use
            coerce_adapters(backend_options["adapters"], must_exist=True)
        self.shared_as: str | None = None
        """The Ollama name the model was shared under (``share_with_ollama=True``)."""
        if share_with_ollama:  # one GGUF for every backend and Ollama (catalog.defaults)
            self.source = shareable_gguf(resolve_model(self._reference, purpose="chat"))
            self.shared_as = _share_with_ollama(self.source)
        if self._reference:  # a named model: a wrong reference fails here, not later
            _ = self.choice
        self._embedding_reference = embedding_model
        self._embedder: ModelBackend | None = None
        self.embedding_explanation = ""
        """Like ``explanation``, for the embedding model (set once it is created)."""
        self._rerank_reference = rerank_model
        self._reranker: ModelBackend | None = None
        self.rerank_explanation = ""
        """Like ``explanation``, for the reranking model (set once it is created)."""

    def __repr__(self) -> str:
        if "choice" not in self.__dict__:
            return f"ModelManager(model={self._reference!r}, backend={self.model_type!r})"
        return f"ModelManager(model={self.source.name!r}, backend={self.backend_class.name!r})"

    # The chat model is resolved, and its backend object created, on first use: with no
    # model named, the default needs a hardware probe and a catalog scan, which an object
    # that only embeds (AdamEmbeddings, AdamEmbedding) never pays for.
    @cached_property
    def source(self) -> ModelSource:
        """Where the chat model comes from (resolved on first use when none was named)."""
        if self._remote is not None:
            return self._remote
        return resolve_model(self._reference, purpose="chat", min_speed=self._min_speed)

    @cached_property
    def choice(self) -> BackendChoice:
        """The chat model's backend class and the reason for it."""
        return registry.choose(self.model_type, self.source, self._backend_options)

    @property
    def backend_class(self) -> type[ModelBackend]:
        return self.choice.backend_class

    @cached_property
    def backend(self) -> ModelBackend:
        """The chat model's backend object (shared process-wide; loads on first call); a
        model created with ADAPTER lines gets its adapters on an in-process backend (the
        Ollama server applies them itself)."""
        options = dict(self._backend_options)
        stored = self.store_layers.adapters if self._remote is None else []
        if stored and "adapters" in accepted_options(self.backend_class, {"adapters": 1}):
            options["adapters"] = [*stored, *coerce_adapters(options.get("adapters"))]
        return self._shared_backend(self.source, self.choice, options)

    @cached_property
    def served(self) -> ServedModel:
        """The chat model with its stored layers and domain: what every text call goes
        through, as ``adam serve``'s requests do (``served``)."""
        return ServedModel(self.source.name, self.backend, self.explanation,
                           self.store_layers, self.domain)

    @cached_property
    def store_layers(self) -> ModelLayers:
        """What Ollama's store keeps beside the chat model (``adam create``'s SYSTEM,
        MESSAGE and PARAMETER lines), applied as Ollama applies them
        (``served.ServedModel``)."""
        return stored_layers(self.source)

    @property
    def explanation(self) -> str:
        """One line saying which model was chosen, which backend runs it, and why."""
        return f"{self.source.explanation}; on {self.backend_class.name}: {self.choice.reason}"

    @property
    def summary(self) -> str:
        """The short form of ``explanation``: the model and its backend, in a few words
        (the command line's default; ``explanation`` says why).

        Example:
            >>> ModelManager(model="smollm2").summary  # doctest: +SKIP
            'SmolLM2-135M-Instruct on llamacpp (embedded)'
        """
        how = "embedded default" if self.source.embedded and self._reference is None else \
            "embedded" if self.source.embedded else self.source.kind
        return f"{self.source.name} on {self.backend_class.name} ({how})"

    @property
    def info(self) -> ModelInfo:
        """What the chat model is (loads it if needed)."""
        return self.backend.info()

    def facts(self, *, load: bool = False) -> ModelFacts:
        """The chat model's limits and abilities (``catalog.profile``): from the loaded
        model when it is loaded (``load=True`` loads it), else from its files on disk and
        the catalog, without loading anything.

        Example:
            >>> ModelManager(model="qwen3.5_9b").facts().context_window   # doctest: +SKIP
            262144
        """
        remote = self.source.kind in ("remote", "ollama")
        if remote and not load:  # asking a server whether it has the model loaded is a call
            return model_facts(self.source)
        backend = self.backend
        if load or backend.is_loaded:
            info = backend.info()  # loads an in-process model; asks a server
            template = None if remote else backend.chat_template() or ""
            return model_facts(self.source, context=info.context_window, template=template)
        return model_facts(self.source)

    @property
    def embedder(self) -> ModelBackend:
        """The embedding model's backend, created on first use."""
        if self._embedder is None:
            self._embedder, self.embedding_explanation = self._role_backend(
                self._embedding_reference, "embedding")
        return self._embedder

    @property
    def reranker(self) -> ModelBackend:
        """The reranking model's backend, created on first use."""
        if self._reranker is None:
            self._reranker, self.rerank_explanation = self._role_backend(
                self._rerank_reference, "rerank")
        return self._reranker

    def _role_backend(self, reference: str | None,
                      purpose: Purpose) -> tuple[ModelBackend, str]:
        """The backend of the embedding or reranking model (one load shared with any other
        user of the same model and options), and why it was chosen."""
        source = resolve_model(reference, purpose=purpose)
        requested = self.model_type
        if requested.lower() != AUTO and registry.get(requested).refuses(source):
            requested = AUTO  # e.g. llama.cpp chat, safetensors embedder
        choice = registry.choose(requested, source)
        options = accepted_options(choice.backend_class, self._backend_options)
        options.pop("adapters", None)  # the chat model's, not this one's
        return (self._shared_backend(source, choice, options),
                f"{source.explanation}; on {choice.backend_class.name}: {choice.reason}")

    def _shared_backend(
        self, source: ModelSource, choice: BackendChoice, options: dict[str, Any]
    ) -> ModelBackend:
        backend = shared_backend(source, choice, options)
        if self.keep_alive is not None:
            loaded_models.set_keep_alive(backend, self.keep_alive)
        return backend

    def load(self) -> ModelManager:
        """Load the chat model now instead of on first use."""
        self.backend.load()
        return self

    def unload(self) -> None:
        """Free the memory of both models; the next call loads again."""
        if "backend" in self.__dict__:
            self.backend.unload()
        for backend in (self._embedder, self._reranker):
            if backend is not None:
                backend.unload()

    def __enter__(self) -> ModelManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unload()

    # -- text generation -------------------------------------------------------------
    def stream_chat(
        self, messages: Messages, config: GenerationConfig | None = None, **options: Any
    ) -> Iterator[Chunk]:
        """Stream the answer to a conversation; the last chunk carries usage. The
        model's stored layers and domain apply as ``served.ServedModel`` says."""
        return self.served.stream_chat(messages, make_config(config, options))

    async def astream_chat(
        self, messages: Messages, config: GenerationConfig | None = None, **options: Any
    ) -> AsyncIterator[Chunk]:
        """Async ``stream_chat``; cancelling the task stops generation."""
        async for chunk in self.served.astream_chat(messages, make_config(config, options)):
            yield chunk

    def stream_complete(
        self, prompt: str, config: GenerationConfig | None = None, *,
        suffix: str | None = None, **options: Any
    ) -> Iterator[Chunk]:
        """Stream a continuation of a raw, already formatted prompt (no chat template, so
        no domain system prompt; the domain's sampling still applies). With ``suffix``:
        fill-in-the-middle, what goes between ``prompt`` and ``suffix`` (code models).

        Example:
            >>> code = manager.stream_complete("def add(a, b):\n    ",  # doctest: +SKIP
            ...                                suffix="\n\nprint(add(1, 2))")
        """
        return self.served.stream_complete(prompt, make_config(config, options),
                                           suffix=suffix)

    async def astream_complete(
        self, prompt: str, config: GenerationConfig | None = None, *,
        suffix: str | None = None, **options: Any
    ) -> AsyncIterator[Chunk]:
        """Async ``stream_complete``; cancelling the task stops generation."""
        async for chunk in self.served.astream_complete(prompt, make_config(config, options),
                                                        suffix=suffix):
            yield chunk

    def complete(self, prompt: str, config: GenerationConfig | None = None, *,
                 suffix: str | None = None, **options: Any) -> Completion:
        """``stream_complete`` collected: a raw continuation of ``prompt`` (no chat
        template), or with ``suffix`` what goes between the two (fill-in-the-middle)."""
        config = make_config(config, options)
        return collect(self.stream_complete(prompt, config, suffix=suffix),
                       self.source.name, config.response_format)

    async def acomplete(self, prompt: str, config: GenerationConfig | None = None, *,
                        suffix: str | None = None, **options: Any) -> Completion:
        """Async ``complete``."""
        config = make_config(config, options)
        return await acollect(self.astream_complete(prompt, config, suffix=suffix),
                              self.source.name, config.response_format)

    def chat(
        self, messages: Messages, config: GenerationConfig | None = None, **options: Any
    ) -> Completion:
        """Answer a whole conversation; returns text, reasoning, tool calls and usage."""
        config = make_config(config, options)
        return collect(self.stream_chat(messages, config=config), self.source.name,
                       config.response_format)

    async def achat(
        self, messages: Messages, config: GenerationConfig | None = None, **options: Any
    ) -> Completion:
        """Async ``chat``."""
        config = make_config(config, options)
        return await acollect(self.astream_chat(messages, config=config), self.source.name,
                              config.response_format)

    def generate_response(
        self,
        prompt: str,
        temperature: float = 0.7,
        max_tokens: int = 512,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> str:
        """The model's answer to one prompt, as a string."""
        messages, config = self._single_turn(prompt, temperature, max_tokens, system_prompt,
                                             kwargs)
        return self.chat(messages, config=config).text

    def generate_stream(
        self,
        prompt: str,
        temperature: float = 0.7,
        max_tokens: int = 512,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> Iterator[str]:
        """The answer to one prompt, piece by piece as it is generated."""
        messages, config = self._single_turn(prompt, temperature, max_tokens, system_prompt,
                                             kwargs)
        return (chunk.text for chunk in self.stream_chat(messages, config=config) if chunk.text)

    async def agenerate_response(
        self,
        prompt: str,
        temperature: float = 0.7,
        max_tokens: int = 512,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Async ``generate_response``."""
        messages, config = self._single_turn(prompt, temperature, max_tokens, system_prompt,
                                             kwargs)
        return (await self.achat(messages, config=config)).text

    async def agenerate_stream(
        self,
        prompt: str,
        temperature: float = 0.7,
        max_tokens: int = 512,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        """Async ``generate_stream``; cancelling the task stops generation."""
        messages, config = self._single_turn(prompt, temperature, max_tokens, system_prompt,
                                             kwargs)
        async for chunk in self.astream_chat(messages, config=config):
            if chunk.text:
                yield chunk.text

    # -- embeddings ------------------------------------------------------------------
    def embed(self, text: str) -> list[float]:
        """The embedding of one text."""
        return self.batch_embed([_one_text(text, "embed")])[0]

    def batch_embed(
        self, texts: list[str], *, kind: EmbeddingKind = "document"
    ) -> list[list[float]]:
        """One embedding per text, computed in length-sorted batches (``kind="query"``
        uses the model's query prompt where it has one)."""
        with loaded_models.in_use(self.embedder):
            return self.embedder.embed(texts, kind=kind)

    async def aembed(self, text: str) -> list[float]:
        """Async ``embed``."""
        return (await self.abatch_embed([_one_text(text, "aembed")]))[0]

    async def abatch_embed(
        self, texts: list[str], *, kind: EmbeddingKind = "document"
    ) -> list[list[float]]:
        """Async ``batch_embed``."""
        with loaded_models.in_use(self.embedder):
            return await self.embedder.aembed(texts, kind=kind)

    # -- reranking -------------------------------------------------------------------
    def rerank(self, query: str, documents: list[str], *, top_n: int | None = None,
               instruction: str | None = None) -> Reranking:
        """``documents`` ordered by relevance to ``query``, best first, each with its index
        and score (``ModelBackend.rerank``), on the reranking model (``rerank_model``)."""
        with loaded_models.in_use(self.reranker):
            return self.reranker.rerank(query, documents, top_n=top_n,
                                        instruction=instruction)

    async def arerank(self, query: str, documents: list[str], *, top_n: int | None = None,
                      instruction: str | None = None) -> Reranking:
        """Async ``rerank``."""
        with loaded_models.in_use(self.reranker):
            return await self.reranker.arerank(query, documents, top_n=top_n,
                                               instruction=instruction)

    # -- helpers ---------------------------------------------------------------------
    def _single_turn(
        self, prompt: str, temperature: float, max_tokens: int, system_prompt: str | None,
        options: dict[str, Any],
    ) -> tuple[list[ChatMessage], GenerationConfig]:
        check_prompt(prompt)
        messages: list[ChatMessage | Mapping[str, Any]] = [ChatMessage("user", prompt)]
        if system_prompt:
            messages.insert(0, ChatMessage("system", system_prompt))
        config = GenerationConfig(temperature=temperature, max_tokens=max_tokens).merged(
            **options)
        return messages, config


SERVER_OPTIONS = ("base_url", "api_key", "timeout", "max_retries")
"""The options that mean "the model is on a server" (ChatOpenAI's and ChatOllama's)."""


def server_options(settings: Any) -> dict[str, Any]:
    """The server options a framework class was given (its ``base_url``, ``api_key``,
    ``timeout``, ``max_retries`` fields), for ``ModelManager``."""
    return {name: getattr(settings, name) for name in SERVER_OPTIONS
            if getattr(settings, name, None) is not None}


def _server_request(model_type: str, reference: str | None, options: dict[str, Any]
                    ) -> tuple[str, ModelSource | None, dict[str, Any]]:
    """The backend, the server's model (None: resolve ``reference`` as usual) and the
    backend's options, for a request that names a server: ``model_type`` a serving engine
    or "ollama", or ``base_url`` given. The model is then the server's own name for it;
    an option a local model cannot use is refused, not dropped."""
    kind = model_type.lower()
    engine = registry.get(kind).name if kind != AUTO else None
    named_server = bool(set(SERVER_OPTIONS) & set(options))
    text = (reference or "").strip()
    ollama = engine == "ollama" or (engine is None and text.startswith("ollama:")
                                    and "base_url" in options)
    if ollama:
        options = dict(options)
        if "base_url" in options:
            options["host"] = options.pop("base_url")
        unknown = sorted(set(options) & {"api_key", "max_retries"})
        if unknown:
            raise UnknownOptionError(f"{', '.join(unknown)}: the Ollama backend takes none "
                                     "(an Ollama server has no API keys; pass headers to "
                                     "the ollama client for adam serve's)")
        name = text.removeprefix("ollama:")
        if not name:
            return "ollama", None, options
        return "ollama", ModelSource("ollama", name, name, f"{name} on the Ollama server at "
                                     f"{options.get('host') or 'the default address'}",
                                     ollama_name=name), options
    if engine in REMOTE_ENGINES or (engine is None and named_server
                                    and text.partition(":")[0] not in REMOTE_ENGINES):
        engine = engine or "openai"
        if not text:
            given = [f"{name}=" for name in SERVER_OPTIONS if name in options]
            by_options = bool(given) and kind == AUTO
            why = (f"{', '.join(given)} {'names' if len(given) == 1 else 'name'} a model on "
                   "a server" if by_options else f"model_type={model_type!r} is a server")
            url = (options.get("base_url") or (os.environ.get("OPENAI_BASE_URL")
                   if engine == "openai" else None) or REMOTE_ENGINES[engine])
            local = (f"leave out {', '.join(given)}" if by_options else
                     "use model_type='auto'")
            raise InvalidRequestError(
                f"{why} ({engine} at {url}), and no model was named: pass model=... as "
                "that server knows it (a server's models are not looked up in this "
                f"package's catalog), or {local} to run a local model", param="model")
        return engine, remote_source(engine, text, options.get("base_url")), options
    if named_server and engine is not None and engine not in REMOTE_ENGINES:
        raise UnknownOptionError(
            f"{', '.join(sorted(set(SERVER_OPTIONS) & set(options)))}: the {engine} backend "
            "runs the model in this process; these options are for a model on a server "
            "(model_type='openai', 'vllm', 'sglang', 'llamacpp-server' or 'ollama')")
    return model_type, None, options


def _share_with_ollama(source: ModelSource) -> str | None:
    """The Ollama name ``source`` is shared under; None while its GGUF is not on disk yet
    (the explanation says how to get it)."""
    from adam_integrations.sharing.ollama_share import default_ollama_name, share_gguf

    if source.ollama_name:
        return source.ollama_name  # it is in Ollama's store already
    if source.kind == "hub" and source.gguf_repo:
        return None
    if source.kind == "gguf":
        return share_gguf(source.location, default_ollama_name(source)).name
    if source.kind not in ("folder", "hub"):
        raise AdamError(f"{source.name} is a {source.kind} model, not on this machine: "
                        "there is nothing to share with Ollama")
    # a transformers checkpoint: converted to a GGUF once (kept in the cache), shared
    from adam_integrations.sharing.checkpoint_gguf import checkpoint_folder, converted_checkpoint

    gguf, _ = converted_checkpoint(checkpoint_folder(source), progress=True)
    return share_gguf(gguf, default_ollama_name(source)).name


def shared_backend(source: ModelSource, choice: BackendChoice,
                   options: dict[str, Any] | None = None) -> ModelBackend:
    """The process-wide backend object for ``source`` on the chosen backend (created on
    first request; see ``core.loaded``)."""
    backend_class, options = choice.backend_class, options or {}
    return loaded_models.backend(backend_class, source, options,
                                 create=lambda: backend_class(source, **options))


def _one_text(text: Any, method: str) -> str:
    if not isinstance(text, str):
        raise InvalidInputTypeError(
            f"{method}() takes one str, got {type(text).__name__}; use "
            f"{'a' if method.startswith('a') else ''}batch_embed() for lists"
        )
    return text
