"""AdamLLM: a LlamaIndex function-calling LLM over adam-integrations' ModelManager.

A thin adapter, like the LangChain one: it translates LlamaIndex messages and tools into
the core's types and the core's chunks back into ``ChatResponse``s. Thinking, tool-call
parsing, constrained output and usage are the core's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from llama_index.core.base.llms.types import (
    ChatMessage as LlamaChatMessage,
)
from llama_index.core.base.llms.types import (
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    LogProb,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.llm import (
    LLMStructuredPredictEndEvent,
    LLMStructuredPredictStartEvent,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json
from llama_index.core.program.utils import FlexibleModel, create_flexible_model
from llama_index.core.prompts import PromptTemplate

from adam_integrations.chat_defaults import ChatDefaults, refuse_unknown_fields
from adam_integrations.core.errors import InvalidRequestError, UnknownOptionError
from adam_integrations.core.types import (
    ROLES,
    ChatMessage,
    Chunk,
    GenerationConfig,
    TokenLogprob,
    ToolCall,
    Usage,
    canonical_role,
)
from adam_integrations.manager import ModelManager

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

T = TypeVar("T")
Model = TypeVar("Model", bound=BaseModel)

dispatcher = get_dispatcher(__name__)

DEFAULT_CONTEXT_WINDOW = 4096
DEFAULT_NUM_OUTPUT = 512


_LLAMA_INDEX_KEYWORDS = frozenset({"thinking", "formatted"})
"""A call's keywords that are LlamaIndex's (the reasoning switch; ``complete``'s
``formatted``), besides the generation options."""


class AdamLLM(FunctionCallingLLM, ChatDefaults):
    """Local LLMs (transformers, GGUF) for LlamaIndex, picked for your hardware.

    Setup:
        .. code-block:: bash

            pip install 'adam-integrations[embedded]'

    Instantiate:
        .. code-block:: python

            from adam_integrations.llama_index import AdamLLM, AdamEmbedding
            from llama_index.core import Settings

            llm = AdamLLM()                                  # default model for this machine
            llm = AdamLLM(model="qwen3_small", temperature=0.7, thinking=False)
            Settings.llm, Settings.embed_model = llm, AdamEmbedding()

    Chat, complete, stream, async (all native; async never blocks the loop):
        .. code-block:: python

            from llama_index.core.llms import ChatMessage

            llm.chat([ChatMessage(role="user", content="Hi")]).message.content
            llm.complete("Paris is").text          # through the chat template
            for r in llm.stream_chat([ChatMessage(role="user", content="Tell a story")]):
                print(r.delta, end="")
            await llm.achat([...]); await llm.astream_complete("...")

    RAG:
        .. code-block:: python

            from llama_index.core import Document, VectorStoreIndex

            index = VectorStoreIndex.from_documents([Document(text="...")],
                                                    embed_model=AdamEmbedding())
            index.as_query_engine(llm=llm).query("What does it say?")

    Tools and agents (forced calls are grammar-constrained):
        .. code-block:: python

            from llama_index.core.agent.workflow import FunctionAgent
            from llama_index.core.tools import FunctionTool

            agent = FunctionAgent(tools=[FunctionTool.from_defaults(get_weather)], llm=llm)
            await agent.run("What is the weather in Paris?")

    Structured output:
        .. code-block:: python

            llm.structured_predict(Movie, PromptTemplate("Describe {title}"), title="Alien")

    Thinking (models that think, e.g. Qwen3): the reasoning is a ``ThinkingBlock`` in
    ``response.message.blocks`` (``additional_kwargs["thinking_delta"]`` while streaming),
    never in ``.content``. ``thinking=False`` per call wins over the instance setting.
    """

    # The model, backend, sampling, logprob, lifetime and server settings are
    # ChatDefaults' (shared with LangChain's ChatAdam); LlamaIndex's own name follows.
    thinking: bool | str | None = Field(
        default=None, description="Reasoning on/off, or a level (low, medium, high, xhigh) "
        "for models that take one; None = model's.")

    _manager: ModelManager = PrivateAttr()
    _metadata: LLMMetadata | None = PrivateAttr(default=None)

    def __init__(self, manager: ModelManager | None = None, **data: Any) -> None:
        refuse_unknown_fields(type(self), data)
        super().__init__(**data)
        self._manager = manager or self.manager_for(self.model)
        if self.model is None:
            self.model = self._manager.source.name

    @classmethod
    def class_name(cls) -> str:
        return "AdamLLM"

    @property
    def manager(self) -> ModelManager:
        """The ModelManager this LLM runs on (shared with other objects naming the model)."""
        return self._manager

    @property
    def metadata(self) -> LLMMetadata:
        """Read from the real model (loading it if needed: its context window is the one
        it runs with), as ``ChatAdam.profile`` is (``catalog.profile``); no network call.
        ``num_output`` is what LlamaIndex keeps free for the answer: ``max_tokens``, else
        its default, not the model's longest answer (which would leave no room for the
        prompt)."""
        if self._metadata is None:
            facts = self._manager.facts(load=True)
            self._metadata = LLMMetadata(
                context_window=facts.context_window or DEFAULT_CONTEXT_WINDOW,
                num_output=self.max_tokens or DEFAULT_NUM_OUTPUT,
                is_chat_model=True, is_function_calling_model=facts.tool_calling,
                model_name=self.model or facts.name)
        return self._metadata

    # -- chat: one stream; the non-streaming calls collect it ------------------------
    # The decorated public methods share undecorated internals, so each call reports
    # one LLM event to LlamaIndex's instrumentation.
    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[LlamaChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._chat_stream(messages, kwargs)

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[LlamaChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return self._achat_stream(messages, kwargs)

    @llm_chat_callback()
    def chat(self, messages: Sequence[LlamaChatMessage], **kwargs: Any) -> ChatResponse:
        return _final(_last(self._chat_stream(messages, kwargs)))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[LlamaChatMessage], **kwargs: Any) -> ChatResponse:
        return _final(await _alast(self._achat_stream(messages, kwargs)))

    # -- completion: through the chat template unless the prompt is formatted --------
    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        return self._complete_stream(prompt, formatted, kwargs)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        return self._acomplete_stream(prompt, formatted, kwargs)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return _last(self._complete_stream(prompt, formatted, kwargs)) or CompletionResponse(
            text="")

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return await _alast(self._acomplete_stream(prompt, formatted, kwargs)) or \
            CompletionResponse(text="")

    def _chat_stream(
        self, messages: Sequence[LlamaChatMessage], kwargs: dict[str, Any]
    ) -> ChatResponseGen:
        builder = _ResponseBuilder()
        for chunk in self._manager.stream_chat(*self._request(messages, kwargs)):
            yield builder.add(chunk)

    async def _achat_stream(
        self, messages: Sequence[LlamaChatMessage], kwargs: dict[str, Any]
    ) -> ChatResponseAsyncGen:
        builder = _ResponseBuilder()
        async for chunk in self._manager.astream_chat(*self._request(messages, kwargs)):
            yield builder.add(chunk)

    def _complete_stream(
        self, prompt: str, formatted: bool, kwargs: dict[str, Any]
    ) -> CompletionResponseGen:
        if not formatted:  # a plain question: send it through the chat template
            for response in self._chat_stream([_user(prompt)], kwargs):
                yield _as_completion(response)
            return
        builder = _ResponseBuilder()
        for chunk in self._manager.stream_complete(prompt, self._config(kwargs)):
            yield _as_completion(builder.add(chunk))

    async def _acomplete_stream(
        self, prompt: str, formatted: bool, kwargs: dict[str, Any]
    ) -> CompletionResponseAsyncGen:
        if not formatted:
            async for response in self._achat_stream([_user(prompt)], kwargs):
                yield _as_completion(response)
            return
        builder = _ResponseBuilder()
        async for chunk in self._manager.astream_complete(prompt, self._config(kwargs)):
            yield _as_completion(builder.add(chunk))

    # -- structured output: constrained to the schema, not a tool-call detour -------
    @dispatcher.span
    def structured_predict(
        self, output_cls: type[Model], prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any,
    ) -> Model:
        """An instance of ``output_cls``: generation is constrained to its JSON schema."""
        dispatcher.event(LLMStructuredPredictStartEvent(output_cls=output_cls, template=prompt,
                                                        template_args=prompt_args))
        completion = self._manager.chat(*self._structured(output_cls, prompt, llm_kwargs,
                                                          prompt_args))
        result = _validated(output_cls, completion.text)
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result

    @dispatcher.span
    async def astructured_predict(
        self, output_cls: type[Model], prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any,
    ) -> Model:
        """Async ``structured_predict``."""
        dispatcher.event(LLMStructuredPredictStartEvent(output_cls=output_cls, template=prompt,
                                                        template_args=prompt_args))
        completion = await self._manager.achat(*self._structured(output_cls, prompt, llm_kwargs,
                                                                 prompt_args))
        result = _validated(output_cls, completion.text)
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result

    @dispatcher.span
    def stream_structured_predict(
        self, output_cls: type[Model], prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any,
    ) -> Generator[Model | FlexibleModel, None, None]:
        """Partial objects while the JSON grows, then the validated ``output_cls``."""
        stream = self._manager.stream_chat(*self._structured(output_cls, prompt, llm_kwargs,
                                                             prompt_args))
        return _partial_objects(output_cls, (chunk.text for chunk in stream))

    @dispatcher.span
    async def astream_structured_predict(
        self, output_cls: type[Model], prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any,
    ) -> AsyncGenerator[Model | FlexibleModel, None]:
        """Async ``stream_structured_predict``."""
        stream = self._manager.astream_chat(*self._structured(output_cls, prompt, llm_kwargs,
                                                              prompt_args))

        async def objects() -> AsyncGenerator[Model | FlexibleModel, None]:
            text, flexible = "", create_flexible_model(output_cls)
            async for chunk in stream:
                text += chunk.text
                partial = _partial(flexible, text)
                if partial is not None:
                    yield partial
            yield _validated(output_cls, text)

        return objects()

    def _structured(
        self, output_cls: type[BaseModel], prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None, prompt_args: dict[str, Any],
    ) -> tuple[list[ChatMessage], GenerationConfig]:
        messages = self._extend_messages(prompt.format_messages(llm=self, **prompt_args))
        return self._request(messages, {**(llm_kwargs or {}), "response_format": output_cls})

    # -- tools -----------------------------------------------------------------------
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | LlamaChatMessage | None = None,
        chat_history: list[LlamaChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(user_msg if isinstance(user_msg, LlamaChatMessage)
                            else _user(user_msg))
        return {
            "messages": messages,
            "tools": [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools],
            "tool_choice": tool_choice or ("required" if tool_required else "auto"),
            "parallel_tool_calls": allow_parallel_tool_calls,
            **kwargs,
        }

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        calls = [ToolSelection(tool_id=block.tool_call_id or "", tool_name=block.tool_name,
                               tool_kwargs=block.tool_kwargs)
                 for block in response.message.blocks if isinstance(block, ToolCallBlock)]
        if not calls and error_on_no_tool_call:
            raise InvalidRequestError(
                f"expected at least one tool call, got: {response.message.content!r}")
        return calls

    # -- helpers ---------------------------------------------------------------------
    def _request(
        self, messages: Sequence[LlamaChatMessage], kwargs: dict[str, Any]
    ) -> tuple[list[ChatMessage], GenerationConfig]:
        return [to_core_message(m) for m in messages], self._config(kwargs)

    def _config(self, kwargs: dict[str, Any]) -> GenerationConfig:
        if "model" in kwargs:
            raise UnknownOptionError(
                "an AdamLLM runs one model (LlamaIndex's LLMs take no model per call): make "
                f"AdamLLM(model={kwargs['model']!r}) for that one")
        return self.generation_config(kwargs.get("thinking", self.thinking), kwargs,
                                      framework=_LLAMA_INDEX_KEYWORDS)

    def unload(self) -> None:
        """Free the model's memory now (the next call loads it again)."""
        self._manager.unload()


class _ResponseBuilder:
    """Core chunks -> cumulative LlamaIndex responses (content so far, plus the delta)."""

    def __init__(self) -> None:
        self.text = ""
        self.thinking = ""
        self.calls: list[ToolCall] = []
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.logprobs: list[list[LogProb]] = []

    def add(self, chunk: Chunk) -> ChatResponse:
        self.text += chunk.text
        self.thinking += chunk.thinking
        self.calls.extend(chunk.tool_calls)
        # LlamaIndex's shape (as its OpenAI LLM fills it): per token, the most likely
        # tokens at that position (the token itself when no alternatives were asked for)
        self.logprobs.extend([_log_prob(top) for top in lp.top_logprobs] or [_log_prob(lp)]
                             for lp in chunk.logprobs)
        extra: dict[str, Any] = {}
        if chunk.thinking:
            extra["thinking_delta"] = chunk.thinking
        blocks: list[Any] = []
        if self.thinking:
            blocks.append(ThinkingBlock(content=self.thinking))
        blocks.append(TextBlock(text=self.text))
        blocks.extend(ToolCallBlock(tool_call_id=c.id, tool_name=c.name,
                                    tool_kwargs=c.arguments) for c in self.calls)
        raw: dict[str, Any] = {}
        if chunk.finish_reason is not None:
            self.usage, self.finish_reason = chunk.usage, chunk.finish_reason
            raw = {"finish_reason": chunk.finish_reason,
                   "invalid_tool_calls": [vars(c) for c in chunk.invalid_tool_calls]}
            if chunk.usage is not None:
                usage = chunk.usage
                raw["usage"] = {"prompt_tokens": usage.prompt_tokens,
                                "completion_tokens": usage.completion_tokens,
                                "total_tokens": usage.total_tokens,
                                "reasoning_tokens": usage.reasoning_tokens,
                                "cached_tokens": usage.cached_tokens,
                                "total_seconds": usage.total_seconds}
        # Tool calls also go where LlamaIndex's older helpers look for them.
        extra_message = {"tool_calls": [{"id": c.id, "type": "function", "function": {
            "name": c.name, "arguments": c.arguments}} for c in self.calls]} if self.calls else {}
        message = LlamaChatMessage(role=MessageRole.ASSISTANT, blocks=blocks,
                                   additional_kwargs=extra_message)
        return ChatResponse(message=message, delta=chunk.text, raw=raw or None,
                            additional_kwargs=extra, logprobs=self.logprobs or None)


def _log_prob(logprob: TokenLogprob) -> LogProb:
    return LogProb(token=logprob.token, logprob=logprob.logprob, bytes=logprob.bytes)


def _validated(output_cls: type[Model], text: str) -> Model:
    try:
        return output_cls.model_validate_json(text)
    except ValueError as error:
        raise InvalidRequestError(
            f"the model's answer is not a complete {output_cls.__name__} (was it cut off by "
            f"max_tokens?): {text[:200]!r}") from error


def _partial(flexible: type[FlexibleModel], text: str) -> FlexibleModel | None:
    try:
        return flexible.model_validate(parse_partial_json(text))
    except ValueError:
        return None


def _partial_objects(
    output_cls: type[Model], pieces: Iterable[str]
) -> Generator[Model | FlexibleModel, None, None]:
    text, flexible = "", create_flexible_model(output_cls)
    for piece in pieces:
        text += piece
        partial = _partial(flexible, text)
        if partial is not None:
            yield partial
    yield _validated(output_cls, text)


def _last(items: Iterable[T]) -> T | None:
    """The last item of a stream (the cumulative response), consuming it."""
    tail = deque(items, maxlen=1)
    return tail[0] if tail else None


async def _alast(items: AsyncIterable[T]) -> T | None:
    last = None
    async for last in items:  # noqa: B007
        pass
    return last


def _user(text: str) -> LlamaChatMessage:
    return LlamaChatMessage(role=MessageRole.USER, content=text)


def _as_completion(response: ChatResponse) -> CompletionResponse:
    return CompletionResponse(text=response.message.content or "", delta=response.delta,
                              raw=response.raw, additional_kwargs=response.additional_kwargs,
                              logprobs=response.logprobs)


def _final(last: ChatResponse | None) -> ChatResponse:
    if last is None:
        return ChatResponse(message=LlamaChatMessage(role=MessageRole.ASSISTANT, content=""))
    return ChatResponse(message=last.message, raw=last.raw, logprobs=last.logprobs)


def to_core_message(message: LlamaChatMessage) -> ChatMessage:
    """A LlamaIndex message as the core's ``ChatMessage`` (thinking left out)."""
    role = canonical_role(message.role.value if hasattr(message.role, "value")
                          else str(message.role))
    text = "".join(b.text for b in message.blocks if isinstance(b, TextBlock))
    calls = [ToolCall(name=b.tool_name, id=b.tool_call_id or "",
                      arguments=b.tool_kwargs if isinstance(b.tool_kwargs, dict) else {})
             for b in message.blocks if isinstance(b, ToolCallBlock)]
    extra = message.additional_kwargs or {}
    return ChatMessage(role if role in ROLES else "user", text,
                       tool_calls=calls, tool_call_id=extra.get("tool_call_id"),
                       name=extra.get("name"))
