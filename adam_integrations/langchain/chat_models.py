"""ChatAdam: a LangChain chat model over adam-integrations' ModelManager.

A thin adapter: it translates LangChain messages, tools and options into the core's
types and the core's chunks back into ``AIMessageChunk``s. Thinking, tool-call parsing,
constrained output, stop strings and usage are all the core's, shared with LlamaIndex.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput, ModelProfile
from langchain_core.language_models.chat_models import (
    BaseChatModel,
    LangSmithParams,
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages import (
    ChatMessage as LangChainChatMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call_chunk
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, PrivateAttr

from adam_integrations.catalog.profile import ModelFacts
from adam_integrations.chat_defaults import ChatDefaults, refuse_unknown_fields
from adam_integrations.core.errors import AdamError, InvalidRequestError, UnknownOptionError
from adam_integrations.core.tools import coerce_tool_choice, coerce_tools
from adam_integrations.core.types import (
    ROLES,
    ChatMessage,
    Chunk,
    GenerationConfig,
    ToolCall,
    canonical_role,
)
from adam_integrations.manager import ModelManager

_LANGCHAIN_KEYWORDS = frozenset({"reasoning", "ls_structured_output_format"})
"""A call's keywords that are LangChain's (the reasoning switch; what
``with_structured_output`` binds for LangSmith), besides the generation options."""


class ChatAdam(BaseChatModel, ChatDefaults):
    """Local chat models (transformers, GGUF) for LangChain, picked for your hardware.

    Setup:
        .. code-block:: bash

            pip install 'adam-integrations[embedded]'

    Instantiate:
        .. code-block:: python

            from adam_integrations.langchain import ChatAdam

            llm = ChatAdam()                        # the default model for this machine
            llm = ChatAdam(model="hf:Qwen/Qwen3-0.6B", temperature=0.7, max_tokens=512)
            llm = ChatAdam(model="qwen3_small", reasoning=False, keep_alive="5m")

    Invoke:
        .. code-block:: python

            llm.invoke([("system", "Answer briefly."), ("human", "What is RAG?")]).content

    Stream:
        .. code-block:: python

            for chunk in llm.stream("Tell a story"):
                print(chunk.text, end="")

    Async (never blocks the event loop; cancelling the task stops generation):
        .. code-block:: python

            await llm.ainvoke("Hello")
            async for chunk in llm.astream("Hello"):
                ...

    Tool calling (forced calls are grammar-constrained, so arguments always validate):
        .. code-block:: python

            from langchain_core.tools import tool

            @tool
            def get_weather(city: str) -> str:
                \"\"\"Weather in a city.\"\"\"
                return "sunny"

            msg = llm.bind_tools([get_weather], tool_choice="any").invoke("Weather in Paris?")
            msg.tool_calls   # [{"name": "get_weather", "args": {"city": "Paris"}, "id": ...}]

    Structured output (``json_schema`` by default: constrained decoding, always valid):
        .. code-block:: python

            from pydantic import BaseModel

            class Joke(BaseModel):
                setup: str
                punchline: str

            llm.with_structured_output(Joke).invoke("Tell me a joke about cats")

    Reasoning (thinking models such as Qwen3):
        .. code-block:: python

            msg = ChatAdam(model="qwen3_small", reasoning=True).invoke("What is 17 * 23?")
            msg.additional_kwargs["reasoning_content"]   # the thinking, never in .content
            msg.content_blocks                            # includes a "reasoning" block

    Usage:
        .. code-block:: python

            msg.usage_metadata
            # {"input_tokens": 31, "output_tokens": 12, "total_tokens": 43,
            #  "output_token_details": {"reasoning": 0}}
    """

    # The model, backend, sampling, logprob, lifetime and server settings are
    # ChatDefaults' (shared with LlamaIndex's AdamLLM); LangChain's own names follow.
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Stop sequences: generation ends there, and they are not part of the answer."""
    reasoning: bool | str | None = None
    """True/False switches a thinking model's reasoning on/off; a level ("low", "medium",
    "high", "xhigh", as ChatOllama takes it) sets the effort of a model that has levels
    and turns an on/off model's thinking on; None = model default."""
    manager: ModelManager | None = Field(default=None, exclude=True)
    """Wrap an existing ModelManager instead of building one from the fields above."""
    streaming: bool = False
    """LangChain's own switch (read by ``BaseChatModel``): True makes ``invoke`` run the
    stream, so callbacks see each token; the answer is the same either way."""

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    _profile_pending: bool = PrivateAttr(default=False)
    """The profile is ours and was read before the model was loaded."""

    def __init__(self, **data: Any) -> None:
        """Fields are checked first (a misspelt one is an UnknownOptionError), then the
        manager is built outside pydantic's validation, so its errors reach the caller
        as this package's own (not wrapped in a pydantic ValidationError)."""
        refuse_unknown_fields(type(self), data)
        super().__init__(**data)
        self._build_manager()

    def _build_manager(self) -> None:
        if self.manager is None:
            self.manager = self.manager_for(self.model)
        elif self.model is None:
            self.model = self.manager.source.name
        self._managers[self.model] = self.manager
        if self.profile is None:  # one given by the caller is kept as given
            self._profile_pending = True
            self._read_profile()

    def _read_profile(self) -> None:
        """``profile`` from the model (``catalog.profile``): its files and the catalog
        until it is loaded, then once more from the loaded model (its real context
        window). Never loads a model; a model that cannot be read leaves it None."""
        if not self._profile_pending:
            return
        with contextlib.suppress(AdamError):
            loaded = self.manager.backend.is_loaded
            self.profile = langchain_profile(self.manager.facts())
            self._profile_pending = not loaded

    @property
    def _llm_type(self) -> str:
        return "adam-integrations"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "model_type": self.model_type,
                "temperature": self.temperature, "max_tokens": self.max_tokens}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider="adam", ls_model_name=kwargs.get("model")
                                 or self.model or "", ls_model_type="chat")
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # -- generation: one stream, collected for invoke --------------------------------
    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        model_name = self._model_name(kwargs)
        manager, request = self._request(messages, stop, kwargs)
        to_chunk = _ChunkTranslator(manager, model_name)
        for chunk in manager.stream_chat(*request):
            generation = to_chunk(chunk)
            if run_manager and generation.text:
                run_manager.on_llm_new_token(generation.text, chunk=generation)
            yield generation
        self._read_profile()

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        model_name = self._model_name(kwargs)
        manager, request = self._request(messages, stop, kwargs)
        to_chunk = _ChunkTranslator(manager, model_name)
        async for chunk in manager.astream_chat(*request):
            generation = to_chunk(chunk)
            if run_manager and generation.text:
                await run_manager.on_llm_new_token(generation.text, chunk=generation)
            yield generation
        self._read_profile()

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        return _keep_invalid_calls_invalid(
            generate_from_stream(self._stream(messages, stop, run_manager, **kwargs)))

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        return _keep_invalid_calls_invalid(
            await agenerate_from_stream(self._astream(messages, stop, run_manager, **kwargs)))

    def _model_name(self, kwargs: dict[str, Any]) -> str:
        """The model as the caller named it (echoed like Ollama does)."""
        return kwargs.get("model") or self.model or self.manager.source.name

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[ModelManager, tuple[list[ChatMessage], GenerationConfig]]:
        """The manager (per-call ``model=`` override) and the core's messages + options."""
        manager = self.manager_for(kwargs.pop("model", None) or self.model)
        # Per-call options come from .bind(), bind_tools, with_structured_output or invoke.
        config = self.generation_config(kwargs.get("reasoning", self.reasoning), kwargs, stop,
                                        framework=_LANGCHAIN_KEYWORDS)
        return manager, ([to_core_message(m) for m in messages], config)

    # -- tools and structured output --------------------------------------------------
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer tools to the model.

        ``tool_choice``: "auto" (default), "none", "any"/"required" (must call one), a
        tool's name, or None. Forced calls are grammar-constrained.
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice not in (None, True, False, "auto", "none", "any", "required"):
            coerce_tool_choice(tool_choice, coerce_tools(formatted))  # an unknown tool: now
        return super().bind(tools=formatted, tool_choice=tool_choice,
                            parallel_tool_calls=parallel_tool_calls, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["json_schema", "function_calling", "json_mode"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Answers as ``schema`` (pydantic class, TypedDict, or JSON schema).

        ``method``: "json_schema" (constrained to the schema; default), "function_calling"
        (a forced, constrained tool call), or "json_mode" (any JSON object). With
        ``include_raw=True`` the result is ``{"raw", "parsed", "parsing_error"}``.
        ``strict`` is accepted for compatibility: constrained output is always strict.
        """
        if kwargs:
            raise UnknownOptionError(f"unexpected arguments: {sorted(kwargs)}")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        if schema is None and method != "json_mode":
            raise InvalidRequestError(f"method={method!r} needs a schema")
        structured = {"kwargs": {"method": method}, "schema": schema}
        if method == "function_calling":
            tool = convert_to_openai_tool(schema)
            name = tool["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name,
                                  ls_structured_output_format=structured)
            parser: Runnable = (PydanticToolsParser(tools=[schema], first_tool_only=True)
                                if is_pydantic else
                                JsonOutputKeyToolsParser(key_name=name, first_tool_only=True))
        elif method == "json_mode":
            # Any JSON object; with a schema, also constrained to it (free with a grammar).
            response_format = "json" if schema is None else _json_schema_of(schema)
            llm = self.bind(response_format=response_format,
                            ls_structured_output_format=structured)
            parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic \
                else JsonOutputParser()
        elif method == "json_schema":
            llm = self.bind(response_format=_json_schema_of(schema),
                            ls_structured_output_format=structured)
            parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic \
                else JsonOutputParser()
        else:
            raise InvalidRequestError(f"unknown method {method!r}; use 'json_schema', "
                             "'function_calling' or 'json_mode'")
        if not include_raw:
            return llm | parser
        parse = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser,
                                           parsing_error=lambda _: None)
        none = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parse.with_fallbacks([none], exception_key="parsing_error")

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text`` by this model's own tokenizer (LangChain's default would use
        GPT-2's); ``trim_messages`` and token counting use it."""
        assert self.manager is not None
        return self.manager.backend.count_tokens(text)

    def unload(self) -> None:
        """Free the model's memory now (the next call loads it again)."""
        for manager in self._managers.values():
            manager.unload()


def _json_schema_of(schema: dict[str, Any] | type) -> dict[str, Any]:
    """A JSON schema from a pydantic (v2 or v1) class, a TypedDict, or a schema dict."""
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        return schema.model_json_schema()
    return convert_to_json_schema(schema)


def _keep_invalid_calls_invalid(result: ChatResult) -> ChatResult:
    """LangChain re-reads tool-call chunks leniently (partial JSON), which would turn a
    call the core found invalid (cut off, unknown tool) into a valid-looking one; move
    those back to ``invalid_tool_calls`` with the core's error."""
    message = result.generations[0].message
    invalid = message.response_metadata.get("invalid_tool_calls") or []
    if isinstance(message, AIMessage) and invalid:
        ids = {call["id"] for call in invalid}
        message.tool_calls = [c for c in message.tool_calls if c.get("id") not in ids]
        message.invalid_tool_calls = [
            *[c for c in message.invalid_tool_calls if c.get("id") not in ids],
            *[invalid_tool_call(**call) for call in invalid]]
    return result


class _ChunkTranslator:
    """Core chunks -> LangChain ``ChatGenerationChunk``s, numbering tool calls."""

    def __init__(self, manager: ModelManager, model_name: str) -> None:
        self._manager = manager
        self._model_name = model_name
        self._calls = 0
        self._invalid: list[dict[str, Any]] = []

    def __call__(self, chunk: Chunk) -> ChatGenerationChunk:
        extra: dict[str, Any] = {}
        if chunk.thinking:
            extra["reasoning_content"] = chunk.thinking
        calls = []
        for call in chunk.tool_calls:
            calls.append(tool_call_chunk(name=call.name, args=json.dumps(call.arguments),
                                         id=call.id, index=self._calls))
            self._calls += 1
        for invalid in chunk.invalid_tool_calls:
            calls.append(tool_call_chunk(name=invalid.name, args=invalid.arguments,
                                         id=invalid.id, index=self._calls))
            self._invalid.append({"name": invalid.name, "args": invalid.arguments,
                                  "id": invalid.id, "error": invalid.error})
            self._calls += 1
        message = AIMessageChunk(content=chunk.text, additional_kwargs=extra,
                                 tool_call_chunks=calls)
        if chunk.logprobs:
            message.response_metadata = {"logprobs": [lp.to_dict() for lp in chunk.logprobs]}
        info = None
        if chunk.finish_reason is not None:
            usage = chunk.usage
            message.chunk_position = "last"
            message.response_metadata = {**message.response_metadata,
                "model_name": self._model_name, "model_provider": "adam",
                "finish_reason": chunk.finish_reason,
                "backend": self._manager.backend_class.name,
            }
            if self._invalid:
                message.response_metadata["invalid_tool_calls"] = self._invalid
            if usage is not None:
                message.usage_metadata = UsageMetadata(
                    input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                    total_tokens=usage.total_tokens,
                    input_token_details={"cache_read": usage.cached_tokens},
                    output_token_details={"reasoning": usage.reasoning_tokens})
                message.response_metadata.update(
                    load_seconds=usage.load_seconds, prompt_seconds=usage.prompt_seconds,
                    completion_seconds=usage.completion_seconds,
                    total_seconds=usage.total_seconds)
            info = {"finish_reason": chunk.finish_reason}
        return ChatGenerationChunk(message=message, generation_info=info)


def to_core_message(message: BaseMessage) -> ChatMessage:
    """A LangChain message as the core's ``ChatMessage``."""
    if isinstance(message, ToolMessage):
        content = _text_of(message.content)
        if message.status == "error":
            content = f"Error: {content}"
        return ChatMessage("tool", content, name=message.name,
                           tool_call_id=message.tool_call_id)
    if isinstance(message, AIMessage):
        return ChatMessage(
            "assistant", _text_of(message.content), name=message.name,
            tool_calls=[ToolCall(name=c["name"], arguments=c["args"], id=c.get("id") or "")
                        for c in message.tool_calls])
    if isinstance(message, (HumanMessage, SystemMessage, LangChainChatMessage)):
        role = canonical_role(getattr(message, "role", message.type))
        role = role if role in ROLES else "user"  # a ChatMessage of a role of its own
        return ChatMessage(role, _text_of(message.content), name=message.name)
    raise InvalidRequestError(f"cannot send a {type(message).__name__} to a chat model")


def _text_of(content: str | list[Any]) -> str:
    """The text of message content given as a string or as a list of content blocks."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif isinstance(block, dict) and block.get("type") in ("reasoning", "thinking"):
            continue  # earlier reasoning stays out of the next prompt
        elif isinstance(block, dict) and block.get("type") in ("tool_use", "tool_call"):
            continue  # carried by tool_calls
        elif isinstance(block, dict) and "json" in block:
            parts.append(json.dumps(block["json"]))
        else:
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            raise InvalidRequestError(
                f"content blocks of type {kind!r} are not supported by local text models; "
                "send text")
    return "".join(parts)


def langchain_profile(facts: ModelFacts) -> ModelProfile:
    """langchain-core's ``ModelProfile`` for a model's facts (``catalog.profile``).

    Example:
        >>> from adam_integrations.catalog.profile import ModelFacts
        >>> profile = langchain_profile(ModelFacts("Qwen/Qwen3.5-9B", 262144, 65536, True))
        >>> profile["max_input_tokens"], profile["reasoning_output"], profile["tool_choice"]
        (262144, True, True)
    """
    profile = ModelProfile(
        name=facts.name, open_weights=True, text_inputs=True, text_outputs=True,
        image_inputs=facts.image_inputs, image_url_inputs=False, audio_inputs=False,
        video_inputs=False, pdf_inputs=False, reasoning_output=facts.thinking,
        tool_calling=facts.tool_calling, tool_choice=facts.tool_calling,
        tool_call_streaming=facts.tool_calling, structured_output=facts.structured_output)
    if facts.context_window:
        profile["max_input_tokens"] = facts.context_window
    if facts.max_output_tokens:
        profile["max_output_tokens"] = facts.max_output_tokens
    if facts.effort_levels:
        profile["reasoning_effort_levels"] = list(facts.effort_levels)
    return profile
