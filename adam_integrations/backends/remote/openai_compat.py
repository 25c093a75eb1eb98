"""OpenAICompatibleModel: a model on a serving engine that speaks OpenAI's API (vLLM,
SGLang, llama.cpp's server, ``adam serve``, OpenAI itself), through the official
``openai`` client.

    OpenAICompatibleModel("openai:gpt-4o-mini")                       # OPENAI_BASE_URL / _API_KEY
    VLLMModel("vllm:Qwen/Qwen3-32B@http://gpu-box:8000/v1")
    ChatAdam(model="sglang:Qwen/Qwen3-8B@http://10.0.0.5:30000/v1")
    ModelManager(model="llamacpp-server:qwen3@http://127.0.0.1:8080/v1")

The engine named in the reference sets what differs between engines (``ENGINES``):
Qwen3's thinking switch as ``chat_template_kwargs.enable_thinking`` (vLLM, SGLang,
llama.cpp's server), the sampling fields beyond OpenAI's (``top_k``, ``min_p``,
``repetition_penalty``), how a JSON schema is sent (``json_schema``, or
``{"type": "json_object", "schema": ...}`` for llama.cpp's servers), how a forced tool call
is made (``tool_choice``, or the call's JSON schema as structured output where the engine
does not force calls: llama-cpp-python's server ignores ``"required"`` and writes broken
arguments for a named tool), where the tokenizer is (vLLM's and llama.cpp's
``/tokenize``), and how to start one (for errors).

Answers come back as the core chunks every backend streams: reasoning from ``reasoning``
or ``reasoning_content`` (vLLM renamed the field), ``<think>`` blocks in ``content`` split
off as the local backends split them, tool calls assembled from their deltas (a broken
one in ``invalid_tool_calls``), usage from ``stream_options.include_usage`` (when the
server reports none, ``completion_tokens`` counts the streamed deltas, one per token on
llama.cpp-based servers). The client retries 429, 5xx and dropped connections with
backoff (``max_retries``); errors say what to do.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from adam_integrations.backends.remote.sdk import (
    Server,
    message_of,
    sdk_errors_mapped,
    sdk_request,
)
from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.backend import ModelBackend, make_config
from adam_integrations.core.errors import (
    AdamError,
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.core.rerank import PairScores
from adam_integrations.core.resolver import REMOTE_ENGINES, remote_source
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    EmbeddingKind,
    GenerationConfig,
    ModelInfo,
    ModelSource,
    coerce_messages,
)
from adam_integrations.wire import openai as wire
from adam_integrations.wire.rerank import rerank_scores

EMBED_BATCH = 64
DEFAULT_RETRIES = 3
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engine:
    """What one serving engine accepts beyond OpenAI's API."""

    name: str
    launch: str
    thinking_switch: bool = True
    sampling_extras: bool = True
    schema_in_json_object: bool = False
    forced_tools_by_schema: bool = False
    reasoning_back: bool = True
    tokenize_paths: tuple[str, ...] = ()
    needs_key: bool = False


ENGINES: dict[str, Engine] = {
    "openai": Engine("openai", "an OpenAI-compatible server", thinking_switch=False,
                     sampling_extras=False, reasoning_back=False, needs_key=True),
    "vllm": Engine("vllm", "vllm serve <model>", tokenize_paths=("/tokenize",)),
    "sglang": Engine("sglang", "python -m sglang.launch_server --model-path <model>"),
    "llamacpp-server": Engine("llamacpp-server",
                              "llama-server -m <model.gguf> --jinja (or python -m "
                              "llama_cpp.server --model <model.gguf>)",
                              schema_in_json_object=True, forced_tools_by_schema=True,
                              tokenize_paths=("/tokenize", "/extras/tokenize")),
}


ENGINE_OWNERS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llamacpp-server"}
"""``owned_by`` in ``/v1/models`` as each engine writes it (vLLM's and SGLang's
``ModelCard`` defaults in their ``entrypoints/openai/protocol.py``, llama-server's
``{"owned_by", "llamacpp"}``), and the engine it names."""


class OpenAICompatibleModel(ModelBackend):
    """A model on an OpenAI-compatible server.

    Example:
        >>> model = OpenAICompatibleModel("openai:smollm2:135m@http://127.0.0.1:11434/v1")
        >>> model.source.endpoint
        'http://127.0.0.1:11434/v1'
        >>> model.chat([{"role": "user", "content": "Hi"}]).text  # doctest: +SKIP

    Args:
        model: ``<engine>:<model>[@<base url>]``, a bare model id, or a resolved source.
        base_url: the server's base URL (default: the reference's, else
            ``OPENAI_BASE_URL``, else the engine's default port on 127.0.0.1).
        api_key: the key (default ``OPENAI_API_KEY``; local engines need none).
        timeout: seconds to wait for the server (default 600).
        max_retries: retries of 429, 5xx and dropped connections, with backoff.
    """

    name = "openai"
    engine_name = "openai"

    def __init__(self, model: str | ModelSource | None = None, *, base_url: str | None = None,
                 api_key: str | None = None, timeout: float | None = None,
                 max_retries: int = DEFAULT_RETRIES) -> None:
        self.source = self._source(model, base_url)
        self.engine = ENGINES[self.source.engine or self.engine_name]
        self.base_url = (base_url or self.source.endpoint or "").rstrip("/")
        self.model_id = self.source.location
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if key is None and self.engine.needs_key and "api.openai.com" in self.base_url:
            raise ModelLoadError("OpenAI needs an API key: pass api_key= or set "
                                 "OPENAI_API_KEY")
        self._api_key = key or "-"  # local engines take any key (the client wants one)
        self._timeout = timeout if timeout is not None else 600.0
        self._max_retries = max_retries
        self._client: Any = None
        self._served: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _source(self, model: str | ModelSource | None, base_url: str | None) -> ModelSource:
        if isinstance(model, ModelSource):
            source = model
        elif isinstance(model, str) and model.partition(":")[0] not in REMOTE_ENGINES \
                and model.strip():
            source = remote_source(self.engine_name, model.strip(), base_url)
        else:
            source = resolve_model(model)
        refusal = self.refuses(source)
        if refusal is not None:
            raise ModelNotFoundError(refusal)
        return source

    @classmethod
    def refuses(cls, source: ModelSource) -> str | None:
        if source.kind == "remote" and source.engine != "anthropic":
            return None
        if source.engine == "anthropic":
            return (f"{source.name!r} is behind Anthropic's Messages API, not OpenAI's: "
                    "the anthropic backend runs it")
        return (f"{source.name!r} is not a model on a server; name one as "
                f"'{cls.engine_name}:<model>@<base url>'")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_id!r}, base_url={self.base_url!r})"

    # -- lifecycle -------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(base_url=self.base_url, api_key=self._api_key,
                                         timeout=self._timeout, max_retries=self._max_retries)
        return self._client

    def _async_client(self) -> Any:
        import openai

        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self._api_key,
                                  timeout=self._timeout, max_retries=self._max_retries)

    @property
    def is_loaded(self) -> bool:
        return self._served is not None

    def load(self) -> None:
        """Check that the server answers, and read what ``/v1/models`` says about the
        model (a model it does not list may still be served: ``adam serve`` answers for
        any reference; a request for one it does not serve is a ModelNotFoundError that
        lists the served ones)."""
        with self._lock:
            if self._served is None:
                self._served = self._find_model()

    def unload(self) -> None:
        """Forget the check (the server keeps the model: it is the server's)."""
        with self._lock:
            self._served = None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _find_model(self) -> dict[str, Any]:
        with self._errors_mapped():
            served = [m.model_dump() for m in self.client.models.list().data]
        self._recognise_engine(served)
        for entry in served:
            if entry.get("id") == self.model_id:
                return entry
        if len(served) == 1 and self.engine.name == "llamacpp-server":
            return served[0]  # one model per llama.cpp server: it answers to any name
        return {}

    def _recognise_engine(self, served: list[dict[str, Any]]) -> None:
        """A server named only as OpenAI-compatible gets its engine's dialect when its
        ``/v1/models`` says which engine it is (``owned_by``, as each engine writes it),
        and a log line says so."""
        if self.engine.name != "openai" or not served:
            return
        owners = {str(entry.get("owned_by")) for entry in served}
        found = next((ENGINES[engine] for owner, engine in ENGINE_OWNERS.items()
                      if owners == {owner}), None)
        if found is None and owners == {"me"} and all("permissions" in e for e in served):
            found = ENGINES["llamacpp-server"]  # llama-cpp-python's server writes "me"
        if found is not None:
            logger.info("the server at %s is %s (its /v1/models says so): requests go in "
                        "its dialect", self.base_url, found.name)
            self.engine = found

    def _fall_back_from(self, error: AdamError, body: dict[str, Any]) -> bool:
        """Whether a request the server refused went again in the other structured-output
        dialect: a server that fails on ``response_format: json_schema`` (llama-cpp-python's
        answers 500) is sent ``json_object`` with the schema from then on, and told so."""
        import openai

        cause = error.__cause__
        refused = isinstance(cause, openai.APIStatusError) and cause.status_code in (
            400, 422, 500)
        if not refused or (body.get("response_format") or {}).get("type") != "json_schema":
            return False
        logger.warning("the server at %s refused response_format json_schema (%s); "
                       "structured output goes to it as json_object with a schema (llama.cpp's "
                       "dialect) from now on", self.base_url, message_of(cause))
        self.engine = replace(self.engine, schema_in_json_object=True)
        return True

    def info(self) -> ModelInfo:
        self.load()
        served = self._served or {}
        context = served.get("max_model_len") or (served.get("meta") or {}).get("n_ctx_train")
        return ModelInfo(name=self.model_id, backend=self.name, family=None,
                         context_window=int(context) if context else None,
                         capabilities=("completion", "chat", "tools", "embedding"),
                         format="server", device="server",
                         details={"base_url": self.base_url, "engine": self.engine.name,
                                  "explanation": self.source.explanation})

    # -- errors ----------------------------------------------------------------------
    def _errors_mapped(self, config: GenerationConfig | None = None) -> Any:
        import openai

        return sdk_errors_mapped(
            openai, Server(self.base_url, self.model_id, self._timeout, self._max_retries,
                           self.engine.launch, "OPENAI_API_KEY", "OPENAI_BASE_URL"),
            served=lambda: f"; {self._served_names()}", refused_hint=_hint(config))

    def _served_names(self) -> str:
        try:
            names = [m.id for m in self.client.models.list().data]
        except Exception:  # the listing failing too says nothing more
            return f"check the model name served at {self.base_url}"
        return f"the server serves: {', '.join(names) or 'none'}"

    # -- generation ------------------------------------------------------------------
    def _stream_chat(self, messages: list[ChatMessage], config: GenerationConfig
                     ) -> Iterator[Chunk]:
        self.load()
        return self._chat_chunks(messages, config)

    def _chat_chunks(self, messages: list[ChatMessage], config: GenerationConfig
                     ) -> Iterator[Chunk]:
        while True:
            body, forced = self._chat_body(messages, config)
            started = False
            try:
                for chunk in self._read(
                        lambda: self.client.chat.completions.with_streaming_response.create(
                            **body), config, forced):  # noqa: B023 (called at once)
                    started = True
                    yield chunk
                return
            except AdamError as error:
                if started or not self._fall_back_from(error, body):
                    raise

    def _stream_complete(self, prompt: str, config: GenerationConfig,
                         suffix: str | None = None) -> Iterator[Chunk]:
        self.load()
        body = wire.completion_request_to_wire(self.model_id, prompt, config, self.engine,
                                               suffix)
        return self._read(lambda: self.client.completions.with_streaming_response.create(
            **sdk_request(_completions_create(), body)), config, False)

    def _read(self, request: Callable[[], Any], config: GenerationConfig,
              forced: bool) -> Iterator[Chunk]:
        """The server's SSE lines read as they are (JSON to dicts, no pydantic objects per
        chunk: that halves the client-side cost of a token); leaving early closes the
        HTTP stream."""
        reader = wire.StreamReader(config, forced_by_schema=forced)
        with self._errors_mapped(config), request() as response:
            for line in response.iter_lines():
                data = wire.sse_data(line)
                if data is not None:
                    yield from reader.feed(data)
            yield from reader.finish()

    async def astream_chat(self, messages: Any, config: GenerationConfig | None = None,
                           **options: Any) -> AsyncIterator[Chunk]:
        """Native async (``openai.AsyncOpenAI``, one per stream, closed with it):
        cancelling closes the HTTP stream, which stops the server's generation."""
        import asyncio

        checked, cfg = coerce_messages(messages), make_config(config, options)
        await asyncio.to_thread(self.load)
        while True:
            body, forced = self._chat_body(checked, cfg)
            reader = wire.StreamReader(cfg, forced_by_schema=forced)
            started = False
            try:
                with self._errors_mapped(cfg):
                    async with self._async_client() as client, \
                            client.chat.completions.with_streaming_response.create(
                                **body) as response:
                        async for line in response.iter_lines():
                            data = wire.sse_data(line)
                            if data is not None:
                                for chunk in reader.feed(data):
                                    started = True
                                    yield chunk
                        for chunk in reader.finish():
                            yield chunk
                return
            except AdamError as error:
                if started or not self._fall_back_from(error, body):
                    raise

    def _embed(self, texts: list[str], kind: EmbeddingKind) -> list[list[float]]:
        self.load()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            batch = texts[start:start + EMBED_BATCH]
            with self._errors_mapped():
                response = self.client.embeddings.create(model=self.model_id, input=batch,
                                                         encoding_format="float")
            for item in sorted(response.data, key=lambda d: d.index):
                vector = item.embedding
                if not vector or not all(isinstance(x, (int, float)) for x in vector):
                    raise UnsupportedOperationError(
                        f"the server at {self.base_url} returned token-level vectors, not "
                        f"one per text, for {self.model_id!r}: serve an embedding model "
                        "(with pooling) to embed with it")
                vectors.append([float(x) for x in vector])
        return vectors

    def _rerank(self, query: str, documents: list[str],
                instruction: str | None) -> PairScores:
        """The engine's own ``/v1/rerank`` (vLLM, SGLang, llama-server and adam serve take
        Jina's shape, ``wire.rerank``)."""
        import openai

        self.load()
        body: dict[str, Any] = {"model": self.model_id, "query": query,
                                "documents": documents, "return_documents": False}
        if instruction:
            body["instruction"] = instruction
        with self._errors_mapped():
            try:
                answer = self.client.post("/rerank", body=body, cast_to=object)
            except openai.NotFoundError as error:
                if self.model_id in str(error):
                    raise  # the model is not served: said as for every other call
                raise UnsupportedOperationError(
                    f"the server at {self.base_url} has no /v1/rerank; rerank on an engine "
                    "that has one (vLLM, SGLang, llama-server --reranking, adam serve)"
                ) from None
        return rerank_scores(answer, len(documents), self.base_url)

    def count_tokens(self, text: str) -> int:
        """Tokens by the server's tokenizer (vLLM's and llama.cpp's ``/tokenize``), else
        by the model's own tokenizer when it is on this machine."""
        import httpx

        root = self.base_url.removesuffix("/v1")
        for path in self.engine.tokenize_paths:
            try:
                response = httpx.post(f"{root}{path}", timeout=self._timeout, json={
                    "model": self.model_id, "prompt": text, "content": text, "input": text,
                    "add_special_tokens": False}, headers={
                    "Authorization": f"Bearer {self._api_key}"})
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                data = response.json()
                return int(data["count"]) if "count" in data else len(data["tokens"])
        return self._count_locally(text)

    def _count_locally(self, text: str) -> int:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.model_id, local_files_only=True)
        except Exception as error:  # not on this machine, in any form transformers reads
            raise UnsupportedOperationError(
                f"the server at {self.base_url} offers no tokenizer endpoint and "
                f"{self.model_id!r} is not on this machine to count with") from error
        return len(tokenizer.encode(text, add_special_tokens=False))

    # -- request building (the format is wire/openai.py's) -----------------------------
    def _chat_body(self, messages: list[ChatMessage], config: GenerationConfig
                   ) -> tuple[dict[str, Any], bool]:
        """The request, and whether a forced call goes as structured output."""
        body, forced = wire.chat_request_to_wire(self.model_id, messages, config, self.engine)
        return sdk_request(_chat_create(), body), forced


class VLLMModel(OpenAICompatibleModel):
    """A model on vLLM (``vllm serve``): ``vllm:<model>[@<base url>]``."""

    name = engine_name = "vllm"


class SGLangModel(OpenAICompatibleModel):
    """A model on SGLang (``sglang.launch_server``): ``sglang:<model>[@<base url>]``."""

    name = engine_name = "sglang"


class LlamaServerModel(OpenAICompatibleModel):
    """A model on llama.cpp's server (``llama-server``, or llama-cpp-python's
    ``llama_cpp.server``): ``llamacpp-server:<model>[@<base url>]``."""

    name = engine_name = "llamacpp-server"


def _chat_create() -> Any:
    from openai.resources.chat.completions import Completions

    return Completions.create


def _completions_create() -> Any:
    from openai.resources.completions import Completions

    return Completions.create


def _hint(config: GenerationConfig | None) -> str:
    if config is not None and config.tool_choice == "required":
        return (" (older vLLM releases reject tool_choice='required': name the tool, or use "
                "vLLM 0.8.3 or later)")
    return ""
