"""AnthropicModel: a model behind Anthropic's Messages API (Anthropic's own, or a server
that speaks it: ``adam serve``'s ``/v1/messages``, Ollama's), through the official
``anthropic`` SDK (the ``[anthropic]`` extra).

    AnthropicModel("anthropic:claude-sonnet-4-5")                       # ANTHROPIC_API_KEY
    ModelManager(model="anthropic:smollm2:135m@http://127.0.0.1:11434")  # adam serve
    ChatAdam(model_type="anthropic", model="claude-haiku-4-5", api_key="...")

The request and the stream's events are ``wire.anthropic``'s (the module ``adam serve``
answers the same API with): system turns as ``system``, tool results as ``tool_result``
blocks, tools with their ``input_schema`` and ``tool_choice`` (``required`` as ``any``),
``think`` as ``thinking`` (a level as ``output_config.effort``), a response format as
``output_config.format``; answers come back as the core's chunks: text, thinking apart,
each ``tool_use`` block a whole call, usage with the cached part. The Messages API has no
raw completions and no embeddings: those are refused, saying what to use.

The SDK retries 429, 5xx and dropped connections with backoff (``max_retries``); its
errors become this package's (``_errors_mapped``). Async is the base class's: the same
stream on a worker thread, so there is one code path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

from adam_integrations.backends.remote.sdk import Server, sdk_errors_mapped, sdk_request
from adam_integrations.core.backend import ModelBackend
from adam_integrations.core.errors import (
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.core.extras import require_extra
from adam_integrations.core.resolver import remote_source
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    EmbeddingKind,
    GenerationConfig,
    ModelInfo,
    ModelSource,
)
from adam_integrations.wire import anthropic as wire

DEFAULT_RETRIES = 2


class AnthropicModel(ModelBackend):
    """A model behind the Messages API.

    Example:
        >>> model = AnthropicModel("anthropic:smollm2:135m@http://127.0.0.1:11434")
        >>> model.source.endpoint
        'http://127.0.0.1:11434'
        >>> model.chat([{"role": "user", "content": "Hi"}]).text  # doctest: +SKIP

    Args:
        model: ``anthropic:<model>[@<base url>]``, a bare model id, or a resolved source.
        base_url: the server (default: the reference's, else ``ANTHROPIC_BASE_URL``, else
            https://api.anthropic.com).
        api_key: the key (default ``ANTHROPIC_API_KEY``; a local server takes any).
        timeout: seconds to wait for the server (default 600).
        max_retries: retries of 429, 5xx and dropped connections, with backoff.
    """

    name = "anthropic"

    def __init__(self, model: str | ModelSource | None = None, *, base_url: str | None = None,
                 api_key: str | None = None, timeout: float | None = None,
                 max_retries: int | None = None) -> None:
        require_extra("anthropic", "the Anthropic backend")
        self.source = self._source(model, base_url)
        self.base_url = (base_url or self.source.endpoint or "").rstrip("/")
        self.model_id = self.source.location
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if key is None and "api.anthropic.com" in self.base_url:
            raise ModelLoadError("Anthropic's API needs a key: pass api_key= or set "
                                 "ANTHROPIC_API_KEY (a local server such as adam serve "
                                 "takes any)")
        self._api_key = key or "-"
        self._timeout = timeout if timeout is not None else 600.0
        self._max_retries = DEFAULT_RETRIES if max_retries is None else max_retries
        self._client: Any = None
        self._lock = threading.Lock()

    @staticmethod
    def _source(model: str | ModelSource | None, base_url: str | None) -> ModelSource:
        if isinstance(model, ModelSource):
            if model.kind != "remote":
                raise ModelNotFoundError(f"{model.name!r} is not a model on a server; name "
                                         "one as 'anthropic:<model>[@<base url>]'")
            return model
        text = (model or "").strip().removeprefix("anthropic:")
        return remote_source("anthropic", text, base_url)

    @classmethod
    def refuses(cls, source: ModelSource) -> str | None:
        if source.kind == "remote" and source.engine == "anthropic":
            return None
        return (f"{source.name!r} is not a model behind the Messages API; name one as "
                "'anthropic:<model>[@<base url>]'")

    def __repr__(self) -> str:
        return f"AnthropicModel({self.model_id!r}, base_url={self.base_url!r})"

    # -- lifecycle: the server holds the model ------------------------------------------
    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import anthropic

                self._client = anthropic.Anthropic(
                    base_url=self.base_url, api_key=self._api_key, timeout=self._timeout,
                    max_retries=self._max_retries)
            return self._client

    @property
    def is_loaded(self) -> bool:
        return self._client is not None

    def load(self) -> None:
        """Make the client (the server is asked on the first request: the Messages API
        has no cheap call that says whether a model is served)."""
        _ = self.client

    def unload(self) -> None:
        """Close the client (the server keeps the model: it is the server's)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def info(self) -> ModelInfo:
        return ModelInfo(name=self.model_id, backend=self.name, family=None,
                         context_window=None,
                         capabilities=("completion", "chat", "tools", "thinking"),
                         format="server", device="server",
                         details={"base_url": self.base_url,
                                  "explanation": self.source.explanation})

    # -- generation --------------------------------------------------------------------
    def _stream_chat(self, messages: list[ChatMessage], config: GenerationConfig
                     ) -> Iterator[Chunk]:
        body = wire.request_to_wire(self.model_id, messages, config)  # refused here, early
        return self._read(body, config)

    def _read(self, body: dict[str, Any], config: GenerationConfig) -> Iterator[Chunk]:
        """The stream's events read as dicts; leaving early closes the HTTP stream."""
        reader = wire.StreamReader(config)
        from anthropic.resources.messages import Messages

        with self._errors_mapped(), \
                self.client.messages.create(**sdk_request(Messages.create, body)) as events:
            for event in events:
                yield from (c for c in reader.feed(event.model_dump()) if not c.empty)
            yield from reader.finish()

    def _stream_complete(self, prompt: str, config: GenerationConfig,
                         suffix: str | None = None) -> Iterator[Chunk]:
        raise UnsupportedOperationError(
            "the Messages API has no raw completions: send the text as a chat message "
            "(chat / stream_chat), or use a local backend or an OpenAI-compatible server "
            "for completions")

    def _embed(self, texts: list[str], kind: EmbeddingKind) -> list[list[float]]:
        raise UnsupportedOperationError(
            "the Messages API has no embeddings: give the manager an embedding_model= "
            "(the embedded all-minilm, a Qwen3-Embedding, or one on a server)")

    def _errors_mapped(self) -> Any:
        import anthropic

        return sdk_errors_mapped(anthropic, Server(
            self.base_url, self.model_id, self._timeout, self._max_retries,
            "adam serve speaks the Messages API", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"))
