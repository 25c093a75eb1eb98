"""Backend-neutral data types: chat messages, generation settings, stream chunks, results.

Every backend speaks these types and every adapter (LangChain, LlamaIndex, the server)
translates from and to them, so a field is defined once. They are plain dataclasses,
not pydantic models: a ``Chunk`` is created for every generated token and must be cheap,
and validation happens once, in ``__post_init__``, raising this package's own errors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from adam_integrations.core.errors import (
    InvalidInputTypeError,
    InvalidRequestError,
    UnknownOptionError,
)
from adam_integrations.core.tools import (
    ResponseFormat,
    ToolSpec,
    coerce_response_format,
    coerce_tool_choice,
    coerce_tools,
)

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")

FinishReason = Literal["stop", "length", "cancelled"]
"""Why generation ended: an end-of-turn token or stop string, max_tokens or the context
window, or the consumer stopped reading."""

Capability = Literal["completion", "chat", "embedding", "tools", "thinking", "insert"]
"""``insert``: fill-in-the-middle (a completion with a ``suffix``)."""

SourceKind = Literal["hub", "folder", "gguf", "ollama", "remote"]
Purpose = Literal["chat", "embedding", "rerank"]
EmbeddingKind = Literal["document", "query"]
"""What a text to embed is: retrieval models embed queries and documents differently."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, after resolution.

    ``location`` is a hub repo id (kind ``hub``), a folder (``folder``), a GGUF file
    path (``gguf``), an Ollama model name (``ollama``) or the model's id on a serving
    engine (``remote``: ``endpoint`` is the engine's OpenAI-compatible base URL, ``engine``
    which one: openai, vllm, sglang or llamacpp-server).
    """

    kind: SourceKind
    location: str
    name: str
    explanation: str = ""
    gguf_file: str | None = None
    embedded: bool = False
    quantization: str | None = None
    gguf_repo: bool = False
    ollama_name: str | None = None
    endpoint: str | None = None
    engine: str | None = None

    @property
    def is_gguf(self) -> bool:
        """Whether the weights are a GGUF file (on disk, or in a hub GGUF repository)."""
        return self.kind == "gguf" or self.gguf_repo


@dataclass
class ToolCall:
    """One call of a tool requested by the model."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    @classmethod
    def coerce(cls, call: ToolCall | Mapping[str, Any]) -> ToolCall:
        """A call in any shape people send: the core's ``{"name", "arguments", "id"}``, or
        OpenAI's and Ollama's ``{"id", "type": "function", "function": {"name",
        "arguments"}}``, with arguments as an object or a JSON string.

        Example:
            >>> ToolCall.coerce({"id": "call_1", "type": "function", "function": {
            ...     "name": "get_weather", "arguments": '{"city": "Oslo"}'}}).arguments
            {'city': 'Oslo'}
        """
        if isinstance(call, ToolCall):
            return call
        if not isinstance(call, Mapping):
            raise InvalidInputTypeError(
                f"a tool call must be a ToolCall or a dict, got {type(call).__name__}")
        function = call.get("function")
        body = function if isinstance(function, Mapping) else call
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(
                f"a tool call needs a function name; got {dict(call)!r} (send "
                "{'type': 'function', 'function': {'name': ..., 'arguments': ...}})")
        arguments = body.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError as error:
                raise InvalidRequestError(
                    f"the arguments of tool call {name!r} are not JSON ({error}); send them "
                    "as a JSON object or a JSON string") from error
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise InvalidRequestError(
                f"the arguments of tool call {name!r} must be a JSON object, got {arguments!r}")
        return cls(name=name, arguments=dict(arguments), id=str(call.get("id") or ""))


@dataclass
class InvalidToolCall:
    """A tool call the model got wrong (bad JSON, unknown tool): kept, never raised."""

    name: str | None
    arguments: str
    error: str
    id: str = ""


@dataclass
class ChatMessage:
    """One turn of a conversation.

    Example:
        >>> ChatMessage("user", "Hello!").to_template_dict()
        {'role': 'user', 'content': 'Hello!'}
    """

    role: Role
    content: str = ""
    name: str | None = None
    tool_call_id: str | None = None
    thinking: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidRequestError(
                f"unknown message role {self.role!r}; use one of {', '.join(ROLES)}"
            )
        if self.content is None:
            self.content = ""
        if not isinstance(self.content, str):
            raise InvalidInputTypeError(
                f"message content must be a str, got {type(self.content).__name__}"
            )

    @classmethod
    def coerce(cls, message: ChatMessage | Mapping[str, Any]) -> ChatMessage:
        """Accept a ``ChatMessage`` or a message dict as OpenAI, Ollama or this package
        writes it: ``developer`` is ``system``; content may be a list of text parts;
        reasoning may come as ``thinking``, ``reasoning_content`` or ``reasoning``; a tool
        result may name its tool with ``name`` or ``tool_name``; tool calls as in
        ``ToolCall.coerce``. Keys that are null (as the ``openai`` SDK dumps them) are
        ignored; any other unknown key is an error that lists the known ones.

        Why this reader is in the core and not in ``wire/``: every Python entry point
        (``ModelBackend.chat``, ``ModelManager``, both frameworks' classes) takes the dicts
        users already have, in any of these shapes, and the core imports nothing above
        it. The wire modules hand their messages here (``ChatRequest.chat_messages``...)
        and own the rest of their formats (fields, tool choices' extras, answers).

        Example:
            >>> ChatMessage.coerce({"role": "assistant", "content": None,
            ...     "tool_calls": [{"id": "c1", "type": "function",
            ...                     "function": {"name": "f", "arguments": "{}"}}]}).tool_calls
            [ToolCall(name='f', arguments={}, id='c1')]
        """
        if isinstance(message, ChatMessage):
            return message
        if not isinstance(message, Mapping):
            raise InvalidInputTypeError(
                f"a message must be a ChatMessage or a dict, got {type(message).__name__}"
            )
        given = {k: v for k, v in message.items() if v is not None}
        unknown = set(given) - _MESSAGE_KEYS
        if unknown or "role" not in given:
            raise InvalidRequestError(
                f"a message dict needs 'role' and may have {sorted(_MESSAGE_KEYS)}; "
                f"got keys {sorted(message)}"
            )
        if given.get("images"):
            raise InvalidRequestError("images are not supported: no vision model is served")
        for key in _MESSAGE_STRINGS & set(given):
            if not isinstance(given[key], str):
                raise InvalidInputTypeError(
                    f"message {key!r} must be a string, got {type(given[key]).__name__}")
        calls = given.get("tool_calls") or []
        if not isinstance(calls, list):
            raise InvalidInputTypeError(
                f"message 'tool_calls' must be a list, got {type(calls).__name__}")
        role = canonical_role(given["role"])
        thinking = given.get("thinking") or given.get("reasoning_content") \
            or given.get("reasoning")
        return cls(role=role, content=_text_content(given.get("content", "")),
                   name=given.get("name") or given.get("tool_name"),
                   tool_call_id=given.get("tool_call_id"), thinking=thinking or None,
                   tool_calls=[ToolCall.coerce(c) for c in calls])

    def to_template_dict(self) -> dict[str, Any]:
        """The message as chat templates (Jinja, Hugging Face style) expect it."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name:
            out["name"] = self.name
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        if self.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return out


_MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_call_id", "thinking", "tool_calls",
                           "reasoning_content", "reasoning", "tool_name", "images"})
_MESSAGE_STRINGS = frozenset({"role", "name", "tool_call_id", "thinking", "reasoning_content",
                              "reasoning", "tool_name"})
ROLE_ALIASES = {"developer": "system", "human": "user", "ai": "assistant",
                "chatbot": "assistant", "model": "assistant", "function": "tool"}
"""The other names people send the four roles by: OpenAI's developer, LangChain's human
and ai, LlamaIndex's chatbot, model and function."""


def canonical_role(role: str) -> str:
    """``role`` as one of ``ROLES`` where it is another name for one (else unchanged).

    >>> canonical_role("human"), canonical_role("developer"), canonical_role("tool")
    ('user', 'system', 'tool')
    """
    return ROLE_ALIASES.get(role, role)


def _text_content(content: Any) -> Any:
    """A message's content: a string, or OpenAI's list of text parts joined."""
    if not isinstance(content, list):
        return content
    texts = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping) and (part.get("type") or "text") == "text":
            texts.append(str(part.get("text", "")))
        else:
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            raise InvalidRequestError(
                f"only text content parts are supported, got a {kind!r} part")
    return "".join(texts)


def coerce_messages(messages: Iterable[ChatMessage | Mapping[str, Any]]) -> list[ChatMessage]:
    """Validate a conversation: a non-empty sequence of messages (objects or dicts)."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Iterable):
        raise InvalidInputTypeError(
            "messages must be a list of ChatMessage or {'role', 'content'} dicts, "
            f"got {type(messages).__name__}"
        )
    result = [ChatMessage.coerce(m) for m in messages]
    if not result:
        raise InvalidRequestError("the message list is empty; pass at least one user message")
    return result


@dataclass(frozen=True)
class GenerationConfig:
    """How to generate: every field ``None`` means "the backend's or model's default".

    Sampling: ``max_tokens`` ... ``frequency_penalty``. Beyond sampling:

    - ``think``: True/False switches a thinking model's reasoning on or off (Qwen3's
      ``enable_thinking``); None keeps the model's default. Reasoning comes back apart
      from the answer (``Chunk.thinking``, ``Completion.thinking``).
    - ``tools``: tools the model may call (``ToolSpec`` or OpenAI-style dicts);
      ``tool_choice``: "auto" (default with tools), "none", "required" (or "any"), or a
      tool name; ``parallel_tool_calls``: True allows several calls in one turn, False
      one; None (default) lets the model decide with "auto" and means one call when a
      call is forced (small models otherwise repeat the forced call).
    - ``response_format``: None, "json" (any JSON object), a JSON schema, or a pydantic
      model class; the answer is then JSON that parses and validates.
    - ``think`` may also be a level, "low", "medium", "high" or "xhigh" (as Ollama takes
      it), the same as ``reasoning_effort``: it goes to the model's own effort control
      (a template that reads ``reasoning_effort``, as gpt-oss's and Qwen3.8's) with
      thinking on. A model whose thinking is only on or off (Qwen3, 3.5, 3.6:
      ``enable_thinking``), or always on, has no levels: a level turns its thinking on
      (as Ollama's ``ThinkValue`` and OpenAI's engines take it), and ``info()`` /
      ``/api/show`` say the level itself is not honoured. Only a model that cannot think
      refuses a level.
    - ``preserve_thinking``: True keeps earlier assistant turns' reasoning in the prompt
      (Qwen3.6's template switch, which drops it by default); a model whose template has
      no such switch refuses it.
    - ``logprobs``: True puts each generated token's log probability in
      ``Chunk.logprobs`` / ``Completion.logprobs``; ``top_logprobs`` (0-20, implies
      ``logprobs``) adds that many of the most likely tokens at each position.
    - ``lora``: which of the model's LoRA adapters (``adapters=``) this request uses, as
      ``(index, scale)`` pairs or llama-server's ``{"id": ..., "scale": ...}``; the
      others are off (``[]``: the base model alone). None: every adapter at its scale.

    A config is frozen and checked once, when it is made: ``merged`` returns the same
    object when nothing changes and checks only the fields that do.

    Example:
        >>> GenerationConfig(max_tokens=64, temperature=0.0, stop=["\\n\\n"]).max_tokens
        64
    """

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    repetition_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    think: bool | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    reasoning_effort: str | None = None
    preserve_thinking: bool | None = None
    lora: tuple[tuple[int, float], ...] | None = None

    def __post_init__(self) -> None:
        self._check(_CONFIG_FIELDS)

    def _check(self, changed: frozenset[str] | set[str]) -> None:
        """Validate and normalise the ``changed`` fields, then every rule between fields
        (cheap: no tool or schema is read again unless it changed)."""
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if "stop" in changed:
            stop = [self.stop] if isinstance(self.stop, str) else self.stop
            if not isinstance(stop or [], (list, tuple)) or not all(
                    isinstance(s, str) for s in stop or []):
                raise InvalidInputTypeError("stop must be a string or a list of strings")
            put("stop", [s for s in (stop or []) if s])
        if "parallel_tool_calls" in changed and self.parallel_tool_calls is not None \
                and not isinstance(self.parallel_tool_calls, bool):
            raise InvalidInputTypeError("parallel_tool_calls must be true or false")
        for name, limits in GENERATION_RANGES.items():
            if name in changed:
                limits.check(name, getattr(self, name))
        if isinstance(self.think, str) and self.think in THINKING_LEVELS:
            # Ollama's effort levels: the model's own effort control where its template
            # has one (``reasoning_effort``), else thinking on
            put("reasoning_effort", self.think)
            put("think", True)
        if self.reasoning_effort is not None and self.think is None:
            put("think", True)  # a level means thinking, at that level
        if self.reasoning_effort is not None and self.reasoning_effort not in THINKING_LEVELS:
            raise InvalidRequestError(
                f"reasoning_effort must be one of {', '.join(THINKING_LEVELS)}, got "
                f"{self.reasoning_effort!r}")
        if self.logprobs is not None and not isinstance(self.logprobs, bool):
            raise InvalidInputTypeError(f"logprobs must be true or false, got {self.logprobs!r}")
        if self.top_logprobs and self.logprobs is False:
            raise InvalidRequestError("top_logprobs needs logprobs; set logprobs=True or "
                                      "leave top_logprobs out")
        if self.top_logprobs and self.logprobs is None:
            put("logprobs", True)  # as ChatOllama and the OpenAI API take it
        if self.think is not None and not isinstance(self.think, bool):
            raise InvalidInputTypeError(
                f"think must be True, False, None or a level ({', '.join(THINKING_LEVELS)}), "
                f"got {self.think!r}")
        if self.think is False and self.reasoning_effort is not None:
            raise InvalidRequestError(
                f"think=False and reasoning_effort={self.reasoning_effort!r} contradict each "
                "other; drop one")
        if self.preserve_thinking is not None and not isinstance(self.preserve_thinking,
                                                                 bool):
            raise InvalidInputTypeError(
                f"preserve_thinking must be true or false, got {self.preserve_thinking!r}")
        if "lora" in changed and self.lora is not None:
            put("lora", _lora_choice(self.lora))
        if "tools" in changed:
            put("tools", coerce_tools(self.tools))
        if "tools" in changed or "tool_choice" in changed:
            put("tool_choice", coerce_tool_choice(self.tool_choice, self.tools))
        if "response_format" in changed:
            put("response_format", coerce_response_format(self.response_format))
        if self.response_format is not None and self.tool_choice in ("required",
                                                                     *self.tool_names):
            raise InvalidRequestError(
                "response_format and a forced tool_choice both constrain the answer; "
                "use one of them"
            )

    def merged(self, **overrides: Any) -> GenerationConfig:
        """This config with the given fields replaced (``None`` values leave a field as it
        is): the same object when nothing changes, else a copy in which only the changed
        fields are checked again.

        Example:
            >>> config = GenerationConfig(temperature=0.2)
            >>> config.merged(temperature=0.2, top_k=None) is config
            True
            >>> config.merged(top_k=5).top_k
            5
        """
        unknown = set(overrides) - _CONFIG_FIELDS
        if unknown:
            raise UnknownOptionError(
                f"unknown generation option(s) {sorted(unknown)}; known: "
                f"{sorted(_CONFIG_FIELDS)}"
            )
        changes = {k: v for k, v in overrides.items()
                   if v is not None and not _same(getattr(self, k), v)}
        if not changes:
            return self
        copy = object.__new__(GenerationConfig)
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(changes)
        copy._check(set(changes))
        return copy

    @classmethod
    def from_options(cls, defaults: Mapping[str, Any], overrides: Mapping[str, Any]
                     ) -> GenerationConfig:
        """A config from an integration's own settings (``defaults``) and a call's keyword
        arguments (``overrides``): overrides that are config fields and not None win;
        other keys (a framework's own arguments) are ignored."""
        names = {f.name for f in fields(cls)}
        options = {k: v for k, v in defaults.items() if k in names}
        options.update({k: v for k, v in overrides.items() if k in names and v is not None})
        return cls(**options)

    @property
    def greedy(self) -> bool:
        """True when sampling is switched off (temperature 0)."""
        return self.temperature is not None and self.temperature == 0.0

    @property
    def sampling_given(self) -> bool:
        """Whether the caller chose any sampling parameter (else model presets apply)."""
        return any(v is not None for v in (self.temperature, self.top_p, self.top_k,
                                            self.min_p))

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self.tools]

    @property
    def tools_active(self) -> bool:
        """Whether the model is offered tools in this request."""
        return bool(self.tools) and self.tool_choice != "none"

    @property
    def forced_call(self) -> bool:
        """Whether the answer must be a call of one of the offered tools."""
        return self.tools_active and bool(self.forced_tools)

    @property
    def forced_tools(self) -> list[ToolSpec]:
        """The tools one of which must be called (empty when calling is optional)."""
        if self.tool_choice == "required":
            return list(self.tools)
        return [t for t in self.tools if t.name == self.tool_choice]


_CONFIG_FIELDS = frozenset(f.name for f in fields(GenerationConfig))


def _lora_choice(value: Any) -> tuple[tuple[int, float], ...]:
    """``lora`` as ``((index, scale), ...)``, each index once."""
    if not isinstance(value, (list, tuple)):
        raise InvalidInputTypeError(f"lora must be a list of adapters ({{\"id\": 0, "
                                    f"\"scale\": 1.0}}), got {value!r}")
    chosen: dict[int, float] = {}
    for item in value:
        if isinstance(item, Mapping):
            index, scale = item.get("id"), item.get("scale", 1.0)
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            index, scale = item
        else:
            index, scale = item, 1.0
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise InvalidRequestError(f"a lora entry's id must be an adapter's index (0, "
                                      f"1, ...), got {index!r}", param="lora")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or \
                not math.isfinite(scale):
            raise InvalidRequestError(f"lora adapter {index}'s scale must be a number, got "
                                      f"{scale!r}", param="lora")
        if index in chosen:
            raise InvalidRequestError(f"lora adapter {index} is listed twice", param="lora")
        chosen[index] = float(scale)
    return tuple(chosen.items())


def _same(current: Any, new: Any) -> bool:
    """Whether a merged value changes nothing (same type and value: ``1`` is not ``1.0``
    nor ``True``, which validation tells apart)."""
    try:
        return type(current) is type(new) and bool(current == new)
    except Exception:  # a value that cannot be compared is taken as a change
        return False


_INT32_MAX = 2**31 - 1
MAX_TOP_LOGPROBS = 20  # OpenAI's and Ollama's limit
THINKING_LEVELS = ("low", "medium", "high", "xhigh")
"""The reasoning levels a request may name (OpenAI's ``reasoning_effort``, Ollama's
``think``); which of them a model takes is its template's business (``core.prompt``)."""


@dataclass(frozen=True)
class NumberRange:
    """The values a numeric setting takes: checked here (``check``), and published as
    JSON Schema (``schema``) by every wire format that carries the setting, so the
    description and the check are one table (``GENERATION_RANGES``)."""

    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    exclusive_minimum: bool = False
    hint: str = ""

    def check(self, name: str, value: Any) -> None:
        _check_number(name, value, minimum=self.minimum, maximum=self.maximum,
                      integer=self.integer, exclusive_minimum=self.exclusive_minimum,
                      hint=self.hint)

    def schema(self) -> dict[str, Any]:
        """The range as JSON Schema keywords.

        Example:
            >>> GENERATION_RANGES["top_p"].schema()
            {'type': 'number', 'minimum': 0.0, 'maximum': 1.0}
        """
        out: dict[str, Any] = {"type": "integer" if self.integer else "number"}
        if self.minimum is not None:
            out["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


GENERATION_RANGES: dict[str, NumberRange] = {
    "max_tokens": NumberRange(1, integer=True,
                              hint="ask for at least 1 token, or None for the model's limit"),
    "temperature": NumberRange(0.0, 100.0,
                               hint="use 0 for greedy decoding, ~0.7 for varied answers"),
    "top_p": NumberRange(0.0, 1.0),
    "top_k": NumberRange(0, _INT32_MAX, integer=True),
    "min_p": NumberRange(0.0, 1.0),
    "seed": NumberRange(-(2**63), 2**64 - 1, integer=True),
    "repetition_penalty": NumberRange(0.0, exclusive_minimum=True, hint="1.0 means no penalty"),
    "presence_penalty": NumberRange(-2.0, 2.0),
    "frequency_penalty": NumberRange(-2.0, 2.0),
    "top_logprobs": NumberRange(0, MAX_TOP_LOGPROBS, integer=True),
}
"""The numeric ``GenerationConfig`` fields and their ranges."""


def _check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
    exclusive_minimum: bool = False,
    hint: str = "",
) -> None:
    if value is None:
        return
    wanted = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted):
        kind = "an integer" if integer else "a number"
        raise InvalidInputTypeError(f"{name} must be {kind}, got {value!r}")
    if not integer:
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer too large for a float
            finite = False
        if not finite:
            raise InvalidRequestError(f"{name} must be a finite number, got {value!r:.40}")
    too_low = minimum is not None and (
        value <= minimum if exclusive_minimum else value < minimum
    )
    too_high = maximum is not None and value > maximum
    if too_low or too_high:
        bound = ">" if exclusive_minimum else ">="
        limits = " and ".join(
            part
            for part in (
                f"{bound} {minimum}" if minimum is not None else "",
                f"<= {maximum}" if maximum is not None else "",
            )
            if part
        )
        suffix = f" ({hint})" if hint else ""
        raise InvalidRequestError(f"{name} must be {limits}, got {value!r}{suffix}")


@dataclass
class Usage:
    """Exact token counts and wall-clock timings (seconds) of one generation."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens whose KV cache was reused from an earlier request (prompt caching),
    included in ``prompt_tokens``; not evaluated again."""
    load_seconds: float = 0.0
    prompt_seconds: float = 0.0
    completion_seconds: float = 0.0
    total_seconds: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def tokens_per_second(self) -> float:
        """Decoding speed: completion tokens after the first one, per second."""
        if self.completion_tokens <= 1 or self.completion_seconds <= 0:
            return 0.0
        return (self.completion_tokens - 1) / self.completion_seconds


@dataclass(slots=True)
class TokenLogprob:
    """One generated token with its log probability under the model (the log-softmax of
    its logits, before temperature, penalties or a grammar), and, when asked for, the
    most likely tokens at that position with theirs.

    ``bytes`` are the token's UTF-8 bytes (a token may hold part of a character).
    ``logprob`` is None only for a prompt's first token (``ModelBackend.score_prompt``),
    which has nothing before it.
    """

    token: str
    logprob: float | None
    bytes: list[int] = field(default_factory=list)
    top_logprobs: list[TokenLogprob] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """As OpenAI and Ollama write one: ``{"token", "logprob", "bytes",
        "top_logprobs"}``."""
        return {"token": self.token, "logprob": self.logprob, "bytes": self.bytes,
                "top_logprobs": [{"token": t.token, "logprob": t.logprob, "bytes": t.bytes}
                                 for t in self.top_logprobs]}


@dataclass(slots=True)
class Chunk:
    """One piece of a streamed answer: answer text, reasoning text and whole tool calls
    arrive separately. The last chunk has ``finish_reason`` and ``usage``. With
    ``logprobs=True``, ``logprobs`` holds the tokens generated since the previous chunk."""

    text: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.text or self.thinking or self.tool_calls or self.invalid_tool_calls
                    or self.finish_reason or self.usage or self.logprobs)


@dataclass
class Completion:
    """A whole answer: the stream of chunks, collected.

    ``parsed`` holds the answer parsed as JSON when a ``response_format`` was given (an
    instance of the pydantic model when one was), or None if it does not parse (e.g.
    cut off by ``max_tokens``).
    """

    text: str
    finish_reason: FinishReason
    usage: Usage
    model: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)
    parsed: Any = None
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass
class ModelInfo:
    """What a loaded model is and what it can do."""

    name: str
    backend: str
    family: str | None = None
    parameter_count: int | None = None
    context_window: int | None = None
    embedding_dimension: int | None = None
    capabilities: tuple[Capability, ...] = ()
    path: str | None = None
    format: str | None = None
    quantization: str | None = None
    device: str | None = None
    dtype: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def collect(
    chunks: Iterable[Chunk], model: str = "", response_format: ResponseFormat | None = None
) -> Completion:
    """Collect a chunk stream into a ``Completion`` (the one non-streaming code path)."""
    text: list[str] = []
    thinking: list[str] = []
    completion = Completion(text="", finish_reason="stop", usage=Usage(), model=model)
    for chunk in chunks:
        text.append(chunk.text)
        thinking.append(chunk.thinking)
        completion.tool_calls.extend(chunk.tool_calls)
        completion.invalid_tool_calls.extend(chunk.invalid_tool_calls)
        completion.logprobs.extend(chunk.logprobs)
        if chunk.finish_reason is not None:
            completion.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            completion.usage = chunk.usage
    completion.text, completion.thinking = "".join(text), "".join(thinking)
    if response_format is not None:
        completion.parsed = parse_structured(completion.text, response_format)
    return completion


def parse_structured(text: str, response_format: ResponseFormat) -> Any:
    """The answer parsed as JSON (and into the pydantic model, if any); None if it fails."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        return None
    if response_format.model is None:
        return value
    try:
        return response_format.model.model_validate(value)
    except ValueError:
        return None


def check_prompt(prompt: Any) -> str:
    """Validate a raw prompt string."""
    if not isinstance(prompt, str):
        raise InvalidInputTypeError(f"prompt must be a str, got {type(prompt).__name__}")
    if not prompt.strip():
        raise InvalidRequestError("the prompt is empty; pass the text the model should answer")
    return prompt


def check_texts(texts: Sequence[Any]) -> list[str]:
    """Validate embedding input: a list of strings (an empty list is allowed)."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise InvalidInputTypeError(
            f"embed() takes a list of strings, got {type(texts).__name__}; "
            "wrap a single text as [text]"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputTypeError(
                f"embed() input {i} is a {type(text).__name__}, not a str; "
                "convert it with str() first"
            )
    return list(texts)


def check_embeddable(token_counts: Sequence[int]) -> None:
    """Refuse texts that tokenize to nothing before they reach a model: an empty sequence
    has no vector, and native libraries (llama.cpp) crash on one. A model that adds its
    own tokens to every text (BERT's [CLS] and [SEP]) never has any.

    Example:
        >>> check_embeddable([3, 0])
        Traceback (most recent call last):
        ...
        adam_integrations.core.errors.InvalidRequestError: text 1 is empty: this model \
has no tokens to embed for it; leave empty texts out, or send some text
    """
    for i, count in enumerate(token_counts):
        if count == 0:
            raise InvalidRequestError(
                f"text {i} is empty: this model has no tokens to embed for it; leave empty "
                "texts out, or send some text", param=f"input[{i}]")
