"""OllamaModel: models served by an Ollama server (or ``adam serve``), through the
official ``ollama`` package.

The server holds the weights; this backend maps the core types onto the Ollama API:
``GenerationConfig`` to ``options`` (num_predict, temperature, top_p, top_k, min_p, seed,
stop, repeat_penalty, presence/frequency penalty; ``num_ctx`` from the ``num_ctx``
option), ``think``, ``tools``, ``format``, ``keep_alive``; answers come back as the same
``Chunk``/``Completion`` types (thinking apart, tool calls parsed, exact usage). The
mappings are ``wire.ollama``'s, the module ``adam serve`` answers with.

Ollama has no ``tool_choice``: "none" sends no tools; a forced choice ("required" or a
tool name) is sent as ``format`` = the JSON schema of a call, so the server's grammar
makes the answer a valid call, which is read back as a tool call (one the server got
wrong comes back in ``invalid_tool_calls``, as on every other backend).

Sync and async go through the same request building and chunk reading; only the client
differs (``ollama.Client``, made once; an ``ollama.AsyncClient`` per async stream, closed
with it), and both map connection and HTTP errors the same way.

The host comes from ``host=``, else ``OLLAMA_HOST``, else ``http://127.0.0.1:11434``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.backend import ModelBackend, make_config
from adam_integrations.core.errors import (
    AdamError,
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.core.rerank import PairScores
from adam_integrations.core.resolver import resolve
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    EmbeddingKind,
    GenerationConfig,
    InvalidToolCall,
    ModelInfo,
    ModelSource,
    ToolCall,
    coerce_messages,
)
from adam_integrations.wire import ollama as wire
from adam_integrations.wire.rerank import rerank_scores

DEFAULT_HOST = "http://127.0.0.1:11434"
EMBED_BATCH = 64


class OllamaModel(ModelBackend):
    """A model on an Ollama server.

    Example:
        >>> from adam_integrations.backends.remote.ollama import OllamaModel
        >>> model = OllamaModel("ollama:qwen3:0.6b")              # doctest: +SKIP
        >>> model.chat([{"role": "user", "content": "Hi"}]).text  # doctest: +SKIP

    Args:
        model: ``ollama:<name>[:<tag>]``, a bare Ollama name, or a resolved source.
        host: the server (default ``OLLAMA_HOST``, else http://127.0.0.1:11434).
        allow_pull: pull a model the server lacks (with a progress bar) instead of failing.
        keep_alive: how long the server keeps the model loaded after a request.
        num_ctx: the context window the server should open for this model.
        timeout: seconds to wait for the server.
    """

    name = "ollama"

    def __init__(
        self,
        model: str | ModelSource | None = None,
        *,
        host: str | None = None,
        allow_pull: bool = False,
        keep_alive: float | str | None = None,
        num_ctx: int | None = None,
        timeout: float | None = None,
    ) -> None:
        if isinstance(model, ModelSource):
            self.source = model
        elif isinstance(model, str) and not model.startswith("ollama:") and ":" in model \
                and "/" not in model:
            self.source = resolve(f"ollama:{model}")  # "qwen3:0.6b" means an Ollama name
        else:
            self.source = resolve_model(model)
        refusal = self.refuses(self.source)
        if refusal is not None:
            raise ModelNotFoundError(refusal)
        self.model_name = self.source.ollama_name or self.source.location
        self.host = host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
        self._allow_pull = allow_pull
        self._keep_alive = keep_alive
        self._num_ctx = num_ctx
        self._timeout = timeout
        self._client: Any = None
        self._shown: Any = None
        self._lock = threading.Lock()

    @classmethod
    def refuses(cls, source: ModelSource) -> str | None:
        if source.kind == "ollama" or source.ollama_name:
            return None
        return (f"{source.name!r} is not an Ollama model; Ollama serves models by name "
                "('ollama:<name>'). Use model_type='llamacpp' or 'huggingface' for files")

    @staticmethod
    def list_models(host: str | None = None) -> list[str]:
        """The names of the models the server has (``/api/tags``)."""
        import ollama

        client = ollama.Client(host=host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST)
        return [m.model for m in client.list().models if m.model]

    def __repr__(self) -> str:
        return f"OllamaModel({self.model_name!r}, host={self.host!r})"

    # -- lifecycle -------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            import ollama

            self._client = ollama.Client(host=self.host, timeout=self._timeout)
        return self._client

    def close(self) -> None:
        """Close the sync client's HTTP connections (a later call opens new ones)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    @property
    def is_loaded(self) -> bool:
        return self._shown is not None

    def load(self) -> None:
        """Check that the server runs and has the model (pulling it when allowed)."""
        with self._lock:
            if self._shown is None:
                self._shown = self._show()

    def unload(self) -> None:
        """Ask the server to unload the model now."""
        with self._lock:
            if self._shown is None:
                return
            self._shown = None
        self._call(lambda: self.client.generate(model=self.model_name, keep_alive=0))

    def _show(self) -> Any:
        try:
            return self._call(lambda: self.client.show(self.model_name))
        except ModelNotFoundError:
            if not self._allow_pull:
                raise
        self.pull()
        return self._call(lambda: self.client.show(self.model_name))

    def pull(self) -> None:
        """Pull the model into the server's store, with a progress bar."""
        from tqdm import tqdm

        bars: dict[str, Any] = {}
        try:
            for part in self._call(lambda: self.client.pull(self.model_name, stream=True)):
                digest, total = getattr(part, "digest", None), getattr(part, "total", None)
                if digest and total:
                    bar = bars.setdefault(digest, tqdm(total=total, unit="B",
                                                       unit_scale=True, desc=digest[7:19]))
                    bar.update((part.completed or 0) - bar.n)
        finally:
            for bar in bars.values():
                bar.close()

    def _call(self, request: Any) -> Any:
        """Run a client call, turning connection and HTTP errors into AdamErrors."""
        with self._errors_mapped():
            return request()

    @contextmanager
    def _errors_mapped(self) -> Iterator[None]:
        """Connection and HTTP errors of either client as this package's errors."""
        import httpx
        import ollama

        try:
            yield
        except (httpx.ConnectError, ConnectionError) as error:
            raise ModelLoadError(
                f"no Ollama server answers at {self.host}; start one with `ollama serve` "
                "(or `adam serve`), or point OLLAMA_HOST / host= at it") from error
        except ollama.ResponseError as error:
            raise _response_error(error, self.model_name) from error

    def info(self) -> ModelInfo:
        self.load()
        shown = self._shown
        model_info = dict(getattr(shown, "modelinfo", None) or {})
        family = model_info.get("general.architecture")
        context = next((v for k, v in model_info.items() if k.endswith(".context_length")),
                       None)
        details = getattr(shown, "details", None)
        return ModelInfo(
            name=self.model_name, backend=self.name, family=family or getattr(
                details, "family", None),
            parameter_count=model_info.get("general.parameter_count"),
            context_window=self._num_ctx or context,
            capabilities=tuple(getattr(shown, "capabilities", None) or ()),
            format=getattr(details, "format", None) or "gguf",
            quantization=getattr(details, "quantization_level", None),
            embedding_dimension=next((v for k, v in model_info.items()
                                      if k.endswith(".embedding_length")), None),
            device="server", details={"host": self.host, "explanation":
                                      self.source.explanation},
        )

    # -- generation ------------------------------------------------------------------
    def _stream_chat(self, messages: list[ChatMessage], config: GenerationConfig
                     ) -> Iterator[Chunk]:
        self.load()
        request = self._chat_request(messages, config)
        parts = self._call(lambda: self.client.chat(**request))
        return _guarded(self, _chunks(parts, config))

    async def astream_chat(self, messages: Any, config: GenerationConfig | None = None,
                           **options: Any) -> AsyncIterator[Chunk]:
        """Native async through ``ollama.AsyncClient``: cancelling closes the HTTP stream,
        which stops the server's generation."""
        import ollama

        checked, cfg = coerce_messages(messages), make_config(config, options)
        await asyncio.to_thread(self.load)
        # One client per stream, closed with it: an httpx AsyncClient belongs to the event
        # loop it was first used on, and callers run streams on different loops.
        with self._errors_mapped():
            async with ollama.AsyncClient(host=self.host, timeout=self._timeout) as client:
                parts = await client.chat(**self._chat_request(checked, cfg))
                async for chunk in _achunks(parts, cfg):
                    yield chunk

    def _stream_complete(self, prompt: str, config: GenerationConfig,
                         suffix: str | None = None) -> Iterator[Chunk]:
        self.load()
        parts = self._call(lambda: self.client.generate(  # a suffix needs Ollama's template
            model=self.model_name, prompt=prompt, suffix=suffix or "", raw=suffix is None,
            stream=True, **wire.logprob_fields(config),
            options=wire.options_from_config(config, self._num_ctx),
            keep_alive=self._keep_alive, format=wire.format_from_config(config)))
        return _guarded(self, _chunks(parts, config))

    def _embed(self, texts: list[str], kind: EmbeddingKind) -> list[list[float]]:
        self.load()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            batch = texts[start:start + EMBED_BATCH]
            response = self._call(lambda batch=batch: self.client.embed(
                model=self.model_name, input=batch, keep_alive=self._keep_alive))
            vectors.extend([float(x) for x in v] for v in response.embeddings)
        return vectors

    def _rerank(self, query: str, documents: list[str],
                instruction: str | None) -> PairScores:
        """``/api/rerank`` where the server has one (adam serve: ``wire.rerank``). Ollama
        itself has no reranking (ollama/ollama#3368): its 404 is said so. (No ``load()``
        first: whether the server has the model, the route's answer says.)"""
        import ollama

        body: dict[str, Any] = {"model": self.model_name, "query": query,
                                "documents": documents, "return_documents": False,
                                "keep_alive": self._keep_alive}
        if instruction:
            body["instruction"] = instruction
        with self._errors_mapped():
            # the client's own connection: its host, headers and timeout
            response = self.client._client.post("/api/rerank", json=body)
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if response.status_code == 404 and not (isinstance(answer, dict)
                                                    and "error" in answer):  # no such route
                raise UnsupportedOperationError(
                    f"the Ollama server at {self.host} cannot rerank: Ollama has no "
                    "reranking (ollama/ollama#3368). Serve the model with `adam serve` "
                    "(POST /api/rerank), or rerank in-process: "
                    "ModelManager(rerank_model=...)")
            if response.status_code >= 400:
                raise ollama.ResponseError(
                    answer.get("error", response.text) if isinstance(answer, dict)
                    else response.text, response.status_code)
        return rerank_scores(answer, len(documents), self.host)

    def count_tokens(self, text: str) -> int:
        raise UnsupportedOperationError("Ollama's API does not expose its tokenizer")

    def _chat_request(self, messages: list[ChatMessage], config: GenerationConfig
                      ) -> dict[str, Any]:
        return wire.chat_request_to_wire(self.model_name, messages, config,
                                         num_ctx=self._num_ctx, keep_alive=self._keep_alive)


def _chunk(part: Any, config: GenerationConfig, text_so_far: list[str]) -> Chunk:
    """One Ollama chat/generate part as a core Chunk."""
    message = getattr(part, "message", None)
    text = (message.content if message is not None else getattr(part, "response", "")) or ""
    thinking = ((message.thinking if message is not None else getattr(part, "thinking", ""))
                or "")
    calls = [ToolCall(name=c.function.name, arguments=dict(c.function.arguments or {}),
                      id=wire.new_call_id())
             for c in (getattr(message, "tool_calls", None) or [])]
    if config.forced_call:  # the answer is the call's JSON: collect it, read it at the end
        text_so_far.append(text)
        text = ""
    chunk = Chunk(text=text, thinking=thinking, tool_calls=calls,
                  logprobs=wire.logprobs_from_wire(getattr(part, "logprobs", None)))
    if part.done:
        if config.forced_call:
            call = _forced_call("".join(text_so_far))
            if isinstance(call, ToolCall):
                chunk.tool_calls = [call]
            else:
                chunk.invalid_tool_calls = [call]
        chunk.finish_reason = "length" if part.done_reason == "length" else "stop"
        chunk.usage = wire.usage_from_response(part)
    return chunk


def _chunks(parts: Iterable[Any], config: GenerationConfig) -> Iterator[Chunk]:
    collected: list[str] = []
    for part in parts:
        yield _chunk(part, config, collected)


async def _achunks(parts: AsyncIterator[Any], config: GenerationConfig) -> AsyncIterator[Chunk]:
    collected: list[str] = []
    async for part in parts:
        yield _chunk(part, config, collected)


def _forced_call(text: str) -> ToolCall | InvalidToolCall:
    """The call a forced ``format`` made the server write; one it got wrong (cut by
    ``num_predict``, say) is returned as data, as every backend returns invalid calls."""
    call_id = wire.new_call_id()
    try:
        data = json.loads(text)
        arguments = data.get("arguments") or {}
        if not isinstance(data["name"], str) or not isinstance(arguments, dict):
            raise TypeError("name must be a string and arguments an object")
        return ToolCall(name=data["name"], arguments=arguments, id=call_id)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return InvalidToolCall(name=None, arguments=text, id=call_id,
                               error=f"the server's forced tool call is not a valid call: "
                                     f"{error}")


def _guarded(model: OllamaModel, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """Errors while reading the stream become AdamErrors too."""
    iterator = iter(chunks)
    while True:
        try:
            chunk = model._call(lambda: next(iterator))
        except StopIteration:
            return
        yield chunk


def _response_error(error: Any, model: str) -> AdamError:
    status, message = getattr(error, "status_code", 0), str(getattr(error, "error", error))
    if status == 404:
        return ModelNotFoundError(
            f"the Ollama server has no model {model!r} ({message}); pull it with "
            f"`ollama pull {model}`, or pass allow_pull=True")
    if status == 400:
        return InvalidRequestError(f"the Ollama server refused the request: {message}")
    return AdamError(f"the Ollama server failed: {message}")
