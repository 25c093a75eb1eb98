"""ModelService: what every route of ``adam serve`` does with a model, whatever the wire
format (the Ollama API and OpenAI's ``/v1`` both use it).

It finds a model by its served name, loads it before answering (so load errors keep their
status), streams and embeds with the model marked busy (never unloaded mid-answer) and
its keep-alive set afterwards, counts tokens, and lists what is on disk and in memory.
Anything that may block (resolving names, hashing files, loading, ``info()``) runs on a
worker thread, so one slow request never stalls the streams of the others.

The limits of ``ServerSettings`` that concern the work itself are applied here: prompt
length (400), the cap on generated tokens, the time limit (the stream ends with an
error once it is past), and shutdown (running streams end with an error line at their
next token). Each generation and load is recorded in the server's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from starlette.requests import Request

from adam_integrations.core.errors import (
    AdamError,
    InvalidRequestError,
    RequestTimeoutError,
    ServerBusyError,
    UnsupportedOperationError,
)
from adam_integrations.core.loaded import UNSET, loaded_models
from adam_integrations.core.rerank import Reranking
from adam_integrations.core.stores.ollama_store import find_manifest
from adam_integrations.core.stores.weight_files import WeightsSummary, describe_weights
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    GenerationConfig,
    ModelSource,
    TokenLogprob,
)
from adam_integrations.served import KeepAlive, ServedModel
from adam_integrations.server.limits import Workload
from adam_integrations.server.metrics import ServerMetrics
from adam_integrations.server.models import ServedModels
from adam_integrations.server.settings import ServerSettings
from adam_integrations.sharing.digest import check_named_digest, file_sha256, folder_sha256

UPLOAD_PIECE = 4 * 1024 * 1024  # bytes of an upload written (and hashed) at once
_FOREVER = timedelta(days=3650)


@dataclass(frozen=True)
class StoredModel:
    """One model ``/api/tags`` (or ``/v1/models``) lists, with what is known from disk."""

    name: str
    source: ModelSource
    size: int
    digest: str
    modified_at: datetime
    weights: WeightsSummary | None = None  # None: not on disk, or unreadable


@dataclass(frozen=True)
class Answer:
    """A route's answer as it is generated: its chunks (not started until read) and the
    seconds loading the model took first (Ollama's ``load_duration``)."""

    chunks: AsyncIterator[Chunk]
    load_seconds: float


@dataclass(frozen=True)
class RunningModel:
    """One model in memory, as ``/api/ps`` lists it."""

    stored: StoredModel
    expires_at: datetime
    on_gpu: bool
    context_length: int


class ModelService:
    """The served models and the operations on them that the routes share."""

    def __init__(self, models: ServedModels | None = None,
                 settings: ServerSettings | None = None) -> None:
        self.settings = settings or ServerSettings()
        self.models = models or ServedModels(model_dirs=self.settings.model_dirs)
        self.workload = Workload(self.settings.max_queue)
        self.metrics = ServerMetrics(lambda: self.workload.in_flight)

    async def get(self, name: object, *, embedding: bool = False) -> ServedModel:
        """The model served as ``name`` (ModelNotFoundError, a 404, when none is)."""
        return await asyncio.to_thread(self.models.get, name, embedding=embedding)

    async def load(self, served: ServedModel) -> float:
        """Load the model before answering; the seconds it took (0 when loaded). A blob
        whose content does not match the digest it is named after (Ollama's store, the
        Hugging Face cache) is refused first, with a ModelLoadError (a 422)."""
        if served.backend.is_loaded:
            return 0.0
        started = time.perf_counter()
        try:
            if served.source.kind == "gguf":
                await asyncio.to_thread(check_named_digest, served.source.location)
            await asyncio.to_thread(served.backend.load)
        except AdamError as error:
            raise as_asked(error, served) from None
        seconds = time.perf_counter() - started
        self.metrics.load_seconds.labels(str(served.source.name)).observe(seconds)
        return seconds

    async def prepared(self, served: ServedModel, config: GenerationConfig, *,
                       insert: bool = False) -> GenerationConfig:
        """A request's config checked against what the model can do
        (``check_capabilities``) and completed with the model's defaults in their one
        order (``ServedModel.sampling``: the request, the model's stored parameters, its
        family's preset, else Ollama's defaults), as Ollama runs a request."""
        await self.check_capabilities(served, config, insert=insert)
        return await served.asampling(config)

    @staticmethod
    async def check_capabilities(served: ServedModel, config: GenerationConfig, *,
                                 insert: bool = False) -> None:
        """Refuse, in Ollama's words, what the model cannot do: ``"x" does not support
        thinking`` (``think`` asked of a model that cannot), ``... insert`` (a suffix)."""
        capabilities = (await asyncio.to_thread(served.backend.info)).capabilities
        if config.think and "thinking" not in capabilities:
            raise UnsupportedOperationError(
                f'"{served.name}" does not support thinking; leave think out (or false), '
                "or use a thinking model such as Qwen3", param="think")
        if insert and "insert" not in capabilities:
            raise UnsupportedOperationError(
                f'"{served.name}" does not support insert: it has no fill-in-the-middle '
                "tokens; send the prompt without a suffix, or use a code model such as "
                "Qwen3-Coder", param="suffix")

    @staticmethod
    async def unload(served: ServedModel) -> None:
        await asyncio.to_thread(served.backend.unload)

    async def keep_loaded(self, served: ServedModel, keep_alive: KeepAlive = UNSET) -> None:
        """Load the model and keep it for ``keep_alive`` idle seconds (else the model's
        default)."""
        await self.load(served)
        with served.in_use(keep_alive):
            pass

    async def chat(self, served: ServedModel, messages: list[ChatMessage],
                   config: GenerationConfig, keep_alive: KeepAlive = UNSET) -> Answer:
        """The pipeline of every chat route, whatever its wire format: load the model (its
        errors keep their status), check and complete the config (``prepared``), stream
        the answer (``stream_chat``)."""
        load_seconds = await self.load(served)
        config = await self.prepared(served, config)
        return Answer(self.stream_chat(served, messages, config, keep_alive), load_seconds)

    async def complete(self, served: ServedModel, prompt: str, config: GenerationConfig,
                       keep_alive: KeepAlive = UNSET, suffix: str | None = None) -> Answer:
        """``chat``'s pipeline for a raw prompt (with ``suffix``: fill-in-the-middle)."""
        load_seconds = await self.load(served)
        config = await self.prepared(served, config, insert=suffix is not None)
        return Answer(self.stream_complete(served, prompt, config, keep_alive, suffix),
                      load_seconds)

    def stream_chat(self, served: ServedModel, messages: list[ChatMessage],
                    config: GenerationConfig, keep_alive: KeepAlive = UNSET
                    ) -> AsyncIterator[Chunk]:
        """The answer's chunks (empty ones left out), the model busy meanwhile; the
        conversation begins as the model's own layers say (``ServedModel.conversation``),
        ``config`` is ``prepared``'s."""
        messages = served.conversation(messages)
        self._check_prompt(m.content for m in messages)
        config = self._capped(config)
        return self._tracked(served, keep_alive,
                             served.backend.astream_chat(messages, config))

    def stream_complete(self, served: ServedModel, prompt: str, config: GenerationConfig,
                        keep_alive: KeepAlive = UNSET, suffix: str | None = None
                        ) -> AsyncIterator[Chunk]:
        """A raw continuation of ``prompt`` (no chat template), or with ``suffix`` what goes
        between the two (fill-in-the-middle), as ``stream_chat``."""
        self._check_prompt([prompt, suffix or ""])
        config = self._capped(config)
        return self._tracked(served, keep_alive,
                             served.backend.astream_complete(prompt, config, suffix=suffix))

    async def prompt_of_tokens(self, served: ServedModel, tokens: list[int]) -> str:
        """The text whose tokens, as a completion reads it, are exactly ``tokens``; refused
        when they are not (another split of that text, a BOS token the model does not put
        there or one missing): a prompt given as ids is run as those ids or not at all."""
        if len(tokens) > self.settings.max_prompt_chars:
            raise InvalidRequestError(
                f"prompt too long: {len(tokens):,} tokens, the server's limit is "
                f"{self.settings.max_prompt_chars:,} characters (adam serve "
                "--max-prompt-chars)")
        backend = served.backend

        def read_back() -> tuple[str, list[int]]:
            text = backend.detokenize(tokens)
            return text, backend.tokenize(text)

        text, again = await asyncio.to_thread(read_back)
        if again != tokens:
            first = next((i for i, (a, b) in enumerate(zip(again, tokens, strict=False))
                          if a != b), min(len(again), len(tokens)))
            raise InvalidRequestError(
                f"the prompt's token ids are not how {served.name} reads their text (they "
                f"differ from token {first} on: {tokens[first:first + 3]} given, "
                f"{again[first:first + 3]} read); send the text, or the ids /tokenize gives "
                "for it (add_special_tokens true)", param="prompt")
        return text

    async def score_prompt(self, served: ServedModel, prompt: str, top_logprobs: int,
                           keep_alive: KeepAlive = UNSET) -> list[TokenLogprob]:
        """``prompt``'s tokens with their log probabilities (``ModelBackend.score_prompt``),
        within the request time limit."""
        self._check_prompt([prompt])
        with served.in_use(keep_alive):
            try:
                return await asyncio.wait_for(asyncio.to_thread(
                    served.backend.score_prompt, prompt, top_logprobs),
                    self.settings.request_timeout)
            except TimeoutError:
                raise self._timed_out() from None

    async def embed(self, served: ServedModel, texts: list[str],
                    keep_alive: KeepAlive = UNSET, dimensions: int | None = None
                    ) -> list[list[float]]:
        """L2-normalised vectors, one per text (as Ollama's /api/embed returns them);
        ``dimensions``: only the first N of each (Matryoshka truncation, as OpenAI's
        ``dimensions``), normalised again."""
        self._check_prompt(texts)
        timeout = self.settings.request_timeout
        with served.in_use(keep_alive):
            try:
                vectors = await asyncio.wait_for(served.backend.aembed(texts), timeout)
            except TimeoutError:
                raise self._timed_out() from None
            except AdamError as error:
                raise as_asked(error, served) from None
        if dimensions is not None and vectors and dimensions > len(vectors[0]):
            raise InvalidRequestError(
                f"dimensions={dimensions}, but this model's vectors have {len(vectors[0])}; "
                "ask for as many or fewer", param="dimensions")
        return [_normalized(v[:dimensions]) for v in vectors]

    async def rerank(self, served: ServedModel, query: str, documents: list[str], *,
                     top_n: int | None = None, instruction: str | None = None,
                     keep_alive: KeepAlive = UNSET) -> Reranking:
        """``documents`` ranked for ``query`` on the served model (any causal LM, by
        Qwen3-Reranker's method), best first."""
        self._check_prompt([query, *documents])
        timeout = self.settings.request_timeout
        with served.in_use(keep_alive):
            try:
                return await asyncio.wait_for(served.backend.arerank(
                    query, documents, top_n=top_n, instruction=instruction), timeout)
            except TimeoutError:
                raise self._timed_out() from None
            except AdamError as error:
                raise as_asked(error, served) from None

    def _check_prompt(self, texts: Iterable[str]) -> None:
        total = sum(len(t) for t in texts)
        if total > self.settings.max_prompt_chars:
            raise InvalidRequestError(
                f"prompt too long: {total:,} characters, the server's limit is "
                f"{self.settings.max_prompt_chars:,} (adam serve --max-prompt-chars)")

    def _capped(self, config: GenerationConfig) -> GenerationConfig:
        cap = self.settings.max_tokens
        if cap is None or (config.max_tokens is not None and config.max_tokens <= cap):
            return config
        return config.merged(max_tokens=cap)

    def _timed_out(self) -> RequestTimeoutError:
        return RequestTimeoutError(
            f"the request ran past the server's limit of {self.settings.request_timeout:g} "
            "seconds (adam serve --request-timeout); ask for fewer tokens or raise it")

    async def _tracked(self, served: ServedModel, keep_alive: KeepAlive,
                       chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
        """``chunks`` with the model marked busy, the limits applied, metrics recorded."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        timeout = self.settings.request_timeout
        deadline = started + timeout if timeout else None
        first_token: float | None = None
        try:
            with served.in_use(keep_alive):
                while True:
                    try:
                        chunk = await self.workload.next_item(chunks, deadline,
                                                              _shutting_down)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        raise self._timed_out() from None
                    except AdamError as error:
                        raise as_asked(error, served) from None
                    if first_token is None and (chunk.text or chunk.thinking
                                                or chunk.tool_calls):
                        first_token = loop.time()
                    if chunk.finish_reason is not None:
                        self.metrics.generation(
                            str(served.source.name), chunk.usage,
                            None if first_token is None else first_token - started,
                            loop.time() - (first_token or started))
                    if chunk.text or chunk.thinking or chunk.tool_calls or chunk.usage \
                            or chunk.finish_reason:
                        yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    async def upload_pieces(self, request: Request) -> AsyncIterator[bytes]:
        """An upload's body in pieces of about ``UPLOAD_PIECE`` bytes (few thread hops
        for a file of gigabytes); a shutdown ends it at once with a ServerBusyError (a
        503), even while the client is between two pieces."""
        stream = request.stream()
        pending = bytearray()
        try:
            while True:
                try:
                    chunk = await self.workload.next_item(stream, None, _upload_cut)
                except StopAsyncIteration:
                    break
                pending += chunk
                if len(pending) >= UPLOAD_PIECE:
                    yield bytes(pending)
                    pending.clear()
            if pending:
                yield bytes(pending)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    @staticmethod
    async def token_count(served: ServedModel, texts: list[str]) -> int:
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
        def collect() -> list[StoredModel]:
            listed = []
            for name, source in self.models.listed():
                with contextlib.suppress(OSError):  # a file removed meanwhile
                    listed.append(stored_model(name, source))
            return listed

        return await asyncio.to_thread(collect)

    async def running(self) -> list[RunningModel]:
        """The models in memory now (one unloaded meanwhile, or whose file went away, is
        left out: listing never fails)."""
        def collect() -> list[RunningModel]:
            running = []
            for backend in loaded_models.loaded():
                expires = loaded_models.expires_in(backend)
                try:
                    info = backend.info()
                    stored = stored_model(self.models.name_of(backend), backend.source)
                except (AdamError, OSError):
                    continue
                running.append(RunningModel(
                    stored, datetime.now(timezone.utc) + (
                        _FOREVER if expires is None else timedelta(seconds=min(
                            expires, _FOREVER.total_seconds()))),
                    info.device not in ("cpu", None), info.context_window or 0))
            return running

        return await asyncio.to_thread(collect)


def as_asked(error: AdamError, served: ServedModel) -> AdamError:
    """``error`` naming the model as the client asked for it (``smollm2:135m``), not as
    its weights name it (``SmolLM2-135M-Instruct``): the backend writes its messages
    knowing only the latter."""
    own = served.source.name
    if own and own != served.name and error.args and isinstance(error.args[0], str):
        pattern = re.compile(rf"(?<![\w/.-]){re.escape(own)}(?![\w/-])")
        error.args = (pattern.sub(lambda _: served.name, error.args[0]), *error.args[1:])
    return error


def _shutting_down() -> ServerBusyError:
    return ServerBusyError("the server is shutting down; this answer stops here (retry "
                           "once it is back)")


def _upload_cut() -> ServerBusyError:
    return ServerBusyError("the server is shutting down; the upload was not kept: upload it "
                           "again once the server is back")


def stored_model(name: str, source: ModelSource) -> StoredModel:
    """What disk says of a model: size, digest, and its weights' headers (a broken file is
    listed with no details; ``adam models`` says what is wrong with it)."""
    path = Path(source.location)
    size, weights = 0, None
    if path.is_file():
        size = path.stat().st_size
    elif path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    digest = _digest(source, path)
    if path.exists():
        with contextlib.suppress(AdamError, OSError):
            weights = describe_weights(path)
    modified = (datetime.fromtimestamp(os.path.getmtime(path), timezone.utc)
                if path.exists() else datetime.now(timezone.utc))
    return StoredModel(name, source, size, digest, modified, weights)


def _digest(source: ModelSource, path: Path) -> str:
    """A listed model's sha256, what clients tell models apart by (``llm-ollama`` takes
    two models with one digest for one): an Ollama store model's is its manifest's, as
    Ollama's own, so two models made from one weights file differ; a file's is its
    content's; a folder's that of its files' (``folder_sha256``)."""
    found = find_manifest(source.ollama_name) if source.ollama_name else None
    if found is not None:
        return hashlib.sha256(found[1].read_bytes()).hexdigest()
    if path.is_file():
        return file_sha256(path)
    return folder_sha256(path) if path.is_dir() else ""


def _normalized(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
