"""ModelService: what every route of ``adam serve`` does with a model, whatever the wire
format (the Ollama API and OpenAI's ``/v1`` both use it).

It finds a model by its served name, loads it before answering (so load errors keep their
status), streams and embeds with the model marked busy (never unloaded mid-answer) and
its keep-alive set afterwards, counts tokens, and lists what is on disk and in memory.
Anything that may block (resolving names, hashing files, loading, ``info()``) runs on a
worker thread, so one slow request never stalls the streams of the others.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from adam_integrations.core.loaded import loaded_models
from adam_integrations.core.types import ChatMessage, Chunk, GenerationConfig, ModelSource
from adam_integrations.server.models import Served, ServedModels
from adam_integrations.sharing.digest import file_sha256

DEFAULT_KEEP_ALIVE = 300.0  # seconds, Ollama's default
_FOREVER = timedelta(days=3650)


@dataclass(frozen=True)
class StoredModel:
    """One model ``/api/tags`` (or ``/v1/models``) lists, with what is known from disk."""

    name: str
    source: ModelSource
    size: int
    digest: str
    modified_at: datetime


@dataclass(frozen=True)
class RunningModel:
    """One model in memory, as ``/api/ps`` lists it."""

    stored: StoredModel
    expires_at: datetime
    on_gpu: bool
    context_length: int


class ModelService:
    """The served models and the operations on them that the routes share."""

    def __init__(self, models: ServedModels | None = None) -> None:
        self.models = models or ServedModels()

    async def get(self, name: object, *, embedding: bool = False) -> Served:
        """The model served as ``name`` (ModelNotFoundError, a 404, when none is)."""
        return await asyncio.to_thread(self.models.get, name, embedding=embedding)

    @staticmethod
    async def load(served: Served) -> float:
        """Load the model before answering; the seconds it took (0 when loaded)."""
        if served.backend.is_loaded:
            return 0.0
        started = time.perf_counter()
        await asyncio.to_thread(served.backend.load)
        return time.perf_counter() - started

    @staticmethod
    async def unload(served: Served) -> None:
        await asyncio.to_thread(served.backend.unload)

    @staticmethod
    async def keep_loaded(served: Served, keep_alive: float | None) -> None:
        """Load the model and keep it for ``keep_alive`` idle seconds."""
        await asyncio.to_thread(served.backend.load)
        loaded_models.set_keep_alive(served.backend, keep_alive)

    @staticmethod
    async def stream_chat(served: Served, messages: list[ChatMessage],
                          config: GenerationConfig, keep_alive: float | None
                          ) -> AsyncIterator[Chunk]:
        """The answer's chunks (empty ones left out), the model busy meanwhile."""
        async for chunk in _tracked(served, keep_alive,
                                    served.backend.astream_chat(messages, config)):
            yield chunk

    @staticmethod
    async def stream_complete(served: Served, prompt: str, config: GenerationConfig,
                              keep_alive: float | None) -> AsyncIterator[Chunk]:
        """A raw continuation of ``prompt`` (no chat template), as ``stream_chat``."""
        async for chunk in _tracked(served, keep_alive,
                                    served.backend.astream_complete(prompt, config)):
            yield chunk

    @staticmethod
    async def embed(served: Served, texts: list[str], keep_alive: float | None
                    ) -> list[list[float]]:
        """L2-normalised vectors, one per text (as Ollama's /api/embed returns them)."""
        with loaded_models.in_use(served.backend, keep_alive=keep_alive):
            vectors = await served.backend.aembed(texts)
        return [_normalized(v) for v in vectors]

    @staticmethod
    async def token_count(served: Served, texts: list[str]) -> int:
        """Tokens in ``texts`` by the model's tokenizer (0 where it cannot count)."""
        def count() -> int:
            try:
                return sum(served.backend.count_tokens(t) for t in texts)
            except Exception:  # a backend without a tokenizer: the count is unknown
                return 0

        return await asyncio.to_thread(count)

    async def stored(self) -> list[StoredModel]:
        """The models on disk under their served names (hashing runs off the loop; the
        hashes are cached, see ``sharing.digest``)."""
        return await asyncio.to_thread(
            lambda: [_stored(name, source) for name, source in self.models.listed()])

    async def running(self) -> list[RunningModel]:
        """The models in memory now."""
        def collect() -> list[RunningModel]:
            running = []
            for backend in loaded_models.loaded():
                info = backend.info()
                expires = loaded_models.expires_in(backend)
                running.append(RunningModel(
                    _stored(self.models.name_of(backend), backend.source),
                    datetime.now(timezone.utc) + (timedelta(seconds=expires)
                                                  if expires is not None else _FOREVER),
                    info.device not in ("cpu", None), info.context_window or 0))
            return running

        return await asyncio.to_thread(collect)


async def _tracked(served: Served, keep_alive: float | None,
                   chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    with loaded_models.in_use(served.backend, keep_alive=keep_alive):
        async for chunk in chunks:
            if chunk.text or chunk.thinking or chunk.tool_calls or chunk.usage \
                    or chunk.finish_reason:
                yield chunk


def _stored(name: str, source: ModelSource) -> StoredModel:
    path = Path(source.location)
    size, digest = 0, ""
    if path.is_file():
        size, digest = path.stat().st_size, file_sha256(path)
    elif path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    modified = (datetime.fromtimestamp(os.path.getmtime(path), timezone.utc)
                if path.exists() else datetime.now(timezone.utc))
    return StoredModel(name, source, size, digest, modified)


def _normalized(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
