"""ServedModel: one model as users reach it, through ``ModelManager`` (and so ChatAdam,
AdamLLM) or ``adam serve``: both front doors go through this one object, so a model
answers the same way whichever door a request comes in by.

A model is more than its weights. Ollama's store may keep a system prompt, example
messages and parameters beside it (``adam create``'s SYSTEM, MESSAGE and PARAMETER
lines), a ``ModelManager`` may give it a domain profile (``catalog.domains``), and its
family may have a recommended sampling. They are applied here, one way:

- **the conversation** (``conversation``): the stored example messages come first, after
  the conversation's own system message when it opens with one; a conversation that does
  not open with a system message gets the stored system prompt, else the domain's. Only
  the first message is looked at, as Ollama does.
- **sampling** (``sampling``), decided once per request, field by field, in this order:

  1. what the request sets;
  2. the stored parameters: each fills the field the request left unset (Ollama's rule
     for a model's PARAMETER lines);
  3. the domain's sampling, when neither chose any sampling field (temperature, top_p,
     top_k, min_p);
  4. the model family's preset (``ModelBackend.sampling_preset``: Qwen3's for its
     thinking or non-thinking mode), when still nothing chose one;
  5. otherwise the engine's defaults fill the fields still unset: ``adam serve`` samples
     as Ollama does (``core.stores.ollama_parameters.DEFAULT_OPTIONS``) on every route;
     a ``ModelManager`` leaves them to the backend (llama.cpp decodes greedily,
     transformers follows the model's ``generation_config.json``).
- **keep-alive and in-use tracking** (``in_use``): the model is marked busy while a stream
  runs (never unloaded mid-answer), and its idle time starts afterwards, with the
  request's keep-alive, else this model's default.

Example:
    >>> from adam_integrations.core.types import ChatMessage
    >>> model = ServedModel("pirate", backend, layers=ModelLayers(  # doctest: +SKIP
    ...     system="Talk like a pirate.", parameters={"temperature": 0.2}))
    >>> messages, config = model.prepare([ChatMessage("user", "Hi")],  # doctest: +SKIP
    ...                                  GenerationConfig())
    >>> [m.role for m in messages], config.temperature                # doctest: +SKIP
    (['system', 'user'], 0.2)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from adam_integrations.catalog.domains import DomainProfile
from adam_integrations.core.backend import ModelBackend
from adam_integrations.core.loaded import UNSET, Unset, loaded_models
from adam_integrations.core.stores.ollama_parameters import config_fields
from adam_integrations.core.stores.ollama_store import ModelLayers, model_layers
from adam_integrations.core.types import ChatMessage, Chunk, GenerationConfig, ModelSource

Messages = Iterable[ChatMessage | Mapping[str, Any]]
KeepAlive = float | Unset | None


def stored_layers(source: ModelSource) -> ModelLayers:
    """What Ollama's store keeps beside the model at ``source`` (empty layers for a model
    that is not in the store)."""
    return model_layers(source.ollama_name) if source.ollama_name else ModelLayers()


@dataclass
class ServedModel:
    """One model, its stored layers, its domain and its defaults (see the module
    docstring for the rules).

    Args:
        name: the name the model was asked by (``adam serve``: as the client wrote it).
        backend: the backend object that runs it (shared process-wide, ``core.loaded``).
        explanation: which model, which backend, and why.
        layers: what Ollama's store keeps beside it (``stored_layers``).
        domain: the domain profile a ``ModelManager`` was given, if any.
        engine_defaults: GenerationConfig fields for what nothing else set (step 5).
        keep_alive: idle seconds before unloading, for requests that name none (None:
            keep it loaded; unset: leave the model's keep-alive as it is).
    """

    name: str
    backend: ModelBackend
    explanation: str = ""
    layers: ModelLayers = field(default_factory=ModelLayers)
    domain: DomainProfile | None = None
    engine_defaults: Mapping[str, Any] = field(default_factory=dict)
    keep_alive: KeepAlive = UNSET
    lora: tuple[tuple[int, float], ...] | None = None
    """The backend's adapters this name answers with when the request chooses none
    (``adam serve --lora``: an adapter's name uses it alone, its base none); None: all."""

    @property
    def source(self) -> ModelSource:
        return self.backend.source

    @cached_property
    def stored_sampling(self) -> dict[str, Any]:
        """The stored parameters as GenerationConfig fields (a parameter of the wrong type
        is a ModelLoadError: the model, not the request, is broken)."""
        return config_fields(self.layers.parameters)

    @cached_property
    def stored_messages(self) -> list[ChatMessage]:
        """The stored example messages, read once."""
        return [ChatMessage.coerce(m) for m in self.layers.messages]

    # -- the rules -----------------------------------------------------------------------
    def conversation(self, messages: Messages) -> list[ChatMessage]:
        """``messages`` begun as the model's layers say: the conversation's own system
        message (or the stored one, else the domain's), the stored examples, the rest."""
        checked = [ChatMessage.coerce(m) for m in messages]
        own = bool(checked) and checked[0].role == "system"
        system = self.layers.system or (self.domain.system_prompt if self.domain else None)
        opening = checked[:1] if own else [ChatMessage("system", system)] if system else []
        return [*opening, *self.stored_messages, *checked[1 if own else 0:]]

    def sampling(self, config: GenerationConfig) -> GenerationConfig:
        """``config`` completed in the documented order (request, stored parameters,
        domain, family preset, engine defaults). The family preset asks the backend,
        which loads an in-process model to read its family."""
        config = config.merged(**_unset_in(config, self.stored_sampling))
        if self.lora is not None and config.lora is None:
            config = config.merged(lora=self.lora)
        if not config.sampling_given and self.domain is not None and self.domain.sampling:
            config = config.merged(**self.domain.sampling)
        if not config.sampling_given:
            preset = self.backend.sampling_preset(config)
            if preset:
                return config.merged(**preset)
        return config.merged(**_unset_in(config, self.engine_defaults))

    async def asampling(self, config: GenerationConfig) -> GenerationConfig:
        """``sampling`` without blocking the event loop (a model not loaded yet is loaded
        on a worker thread)."""
        if self.backend.is_loaded:
            return self.sampling(config)
        return await asyncio.to_thread(self.sampling, config)

    def prepare(self, messages: Messages, config: GenerationConfig
                ) -> tuple[list[ChatMessage], GenerationConfig]:
        """What the backend is given for a conversation: ``conversation`` and
        ``sampling`` applied."""
        return self.conversation(messages), self.sampling(config)

    def in_use(self, keep_alive: KeepAlive = UNSET) -> AbstractContextManager[ModelBackend]:
        """The model marked busy for a ``with`` block; afterwards its idle time starts,
        with ``keep_alive`` (else this model's default) set first."""
        return loaded_models.in_use(
            self.backend, keep_alive=self.keep_alive if isinstance(keep_alive, Unset)
            else keep_alive)

    # -- streams -------------------------------------------------------------------------
    def stream_chat(self, messages: Messages, config: GenerationConfig) -> Iterator[Chunk]:
        """The answer to a conversation, the model busy meanwhile (a bad request fails
        here, before the stream starts)."""
        started, was_loaded = time.perf_counter(), self.backend.is_loaded
        messages, config = self.prepare(messages, config)
        loading = 0.0 if was_loaded else time.perf_counter() - started
        return self._tracked(self.backend.stream_chat(messages, config), loading)

    async def astream_chat(self, messages: Messages, config: GenerationConfig
                           ) -> AsyncIterator[Chunk]:
        """Async ``stream_chat``; cancelling the task stops generation."""
        started, was_loaded = time.perf_counter(), self.backend.is_loaded
        conversation = self.conversation(messages)
        config = await self.asampling(config)
        loading = 0.0 if was_loaded else time.perf_counter() - started
        with self.in_use():
            async for chunk in self.backend.astream_chat(conversation, config):
                yield _with_load_time(chunk, loading)

    def stream_complete(self, prompt: str, config: GenerationConfig, *,
                        suffix: str | None = None) -> Iterator[Chunk]:
        """A raw continuation of ``prompt`` (no chat template, so no stored or domain
        system prompt; the sampling rules apply), or with ``suffix`` what goes between the
        two (fill-in-the-middle)."""
        started, was_loaded = time.perf_counter(), self.backend.is_loaded
        config = self.sampling(config)
        loading = 0.0 if was_loaded else time.perf_counter() - started
        return self._tracked(self.backend.stream_complete(prompt, config, suffix=suffix),
                             loading)

    async def astream_complete(self, prompt: str, config: GenerationConfig, *,
                               suffix: str | None = None) -> AsyncIterator[Chunk]:
        """Async ``stream_complete``; cancelling the task stops generation."""
        started, was_loaded = time.perf_counter(), self.backend.is_loaded
        config = await self.asampling(config)
        loading = 0.0 if was_loaded else time.perf_counter() - started
        with self.in_use():
            async for chunk in self.backend.astream_complete(prompt, config, suffix=suffix):
                yield _with_load_time(chunk, loading)

    def _tracked(self, chunks: Iterator[Chunk], loading: float) -> Iterator[Chunk]:
        with self.in_use():
            for chunk in chunks:
                yield _with_load_time(chunk, loading)


def _with_load_time(chunk: Chunk, seconds: float) -> Chunk:
    """``chunk``, its usage counting the ``seconds`` spent loading the model before the
    backend was called (the family preset needs the loaded model)."""
    if seconds and chunk.usage is not None and not chunk.usage.load_seconds:
        chunk.usage.load_seconds = seconds
        chunk.usage.total_seconds += seconds
    return chunk


def _unset_in(config: GenerationConfig, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The ``fields`` that ``config`` leaves unset (an empty ``stop`` list is unset)."""
    return {name: value for name, value in fields.items()
            if (not config.stop if name == "stop" else getattr(config, name) is None)}
