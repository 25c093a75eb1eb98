"""InProcessBackend: what the transformers and llama.cpp backends share.

Both hold the weights in this process and decode token by token, so both do the same
things around their engine: resolve and check the model source, load once under a lock
(and say how long a call spent loading), render the chat template (or a plain prompt for
models without one), check that the prompt leaves room in the context window, and set up
the output parser and chunk assembler. That lives here once; each backend adds loading,
tokenizing and its decode loop.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.catalog.qwen3 import family_sampling
from adam_integrations.core.adapters import AdapterLike, coerce_adapters
from adam_integrations.core.backend import ModelBackend
from adam_integrations.core.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    SchemaRelaxationWarning,
)
from adam_integrations.core.extras import require_extra
from adam_integrations.core.output import ResponseParser
from adam_integrations.core.prompt import TemplateTraits, opens_thinking, template_inputs
from adam_integrations.core.types import ChatMessage, GenerationConfig, ModelSource, Purpose
from adam_integrations.decoding.chunks import ChunkAssembler
from adam_integrations.decoding.constrained import ConstrainedDecoder
from adam_integrations.decoding.grammar import Grammars, ThinkingMode, request_plan, thinking_mode

DEFAULT_MAX_TOKENS = 512  # only for models whose context window is unknown

# When the answer must have a form (a schema, a forced tool call) and the model thinks
# first, its think block is closed after this share of max_tokens, so the constrained
# answer still fits: otherwise a model that thinks long (every small model, and Qwen3 on
# hard questions) spends max_tokens in its reasoning and returns no answer at all. The
# Qwen team closes thinking at a budget the same way; raise max_tokens to think longer.
CONSTRAINED_THINKING_SHARE = 0.5

DEFAULT_PARALLEL = 4
"""Requests decoded together on one model when neither ``parallel=`` nor
``OLLAMA_NUM_PARALLEL`` says (llama.cpp: fewer when the slots' KV caches would not fit the
RAM). Why 4: on the 2-core CPU this project is measured on, decoding 4 sequences at once
gave about 2x the tokens/s of one, and 8 little more than 4 (``benchmarks/README.md``),
while each llama.cpp slot holds a whole context window of KV cache up front; a GPU gains
more from more, but its memory is the limit there. llama-server opens 4 slots by default
(``--parallel -1``) for the same reasons."""
LoadedT = TypeVar("LoadedT")


def requested_parallel(parallel: object) -> int | None:
    """The requests to decode together that were asked for: ``parallel`` when given, else
    ``OLLAMA_NUM_PARALLEL`` (Ollama's variable; ``adam serve --parallel`` passes
    ``parallel`` itself), else None."""
    if parallel is not None:
        return _whole_number(parallel, "parallel")
    raw = os.environ.get("OLLAMA_NUM_PARALLEL", "").strip()
    return _whole_number(raw, "OLLAMA_NUM_PARALLEL") if raw else None


def parallel_slots(parallel: object) -> int:
    """``requested_parallel``, or ``DEFAULT_PARALLEL``."""
    return requested_parallel(parallel) or DEFAULT_PARALLEL


def _whole_number(value: object, name: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if isinstance(value, bool) or number < 1 or str(number) != str(value).strip():
        raise InvalidRequestError(f"{name}={value!r}: give the number of requests to decode "
                                  "together, a whole number of at least 1")
    return number


@dataclass
class Generation:
    """One request's decoding set-up, made before its stream starts."""

    max_new: int
    thinking: ThinkingMode
    assembler: ChunkAssembler
    thinking_budget: int | None = None
    """Tokens after which an open think block is closed (None: no limit)."""


class InProcessBackend(ModelBackend, Generic[LoadedT]):
    """A backend whose model runs in this process (transformers, llama.cpp).

    Subclasses implement ``_load`` (returning what exists only while the model is in
    memory), ``_apply_template`` and ``_traits``, plus the primitives of ``ModelBackend``.
    """

    refusal_hint: ClassVar[str] = ""
    """Appended to the constructor's error when the backend refuses the source."""
    extra: ClassVar[str] = ""
    """The pip extra that installs this backend's engine (``core.extras``)."""

    def __init__(self, model: str | os.PathLike[str] | ModelSource | None, *,
                 purpose: Purpose = "chat", chat_template: str | None = None,
                 adapters: Sequence[AdapterLike] | AdapterLike | None = None) -> None:
        if self.extra:
            require_extra(self.extra, f"the {self.name} backend")
        self.adapters = coerce_adapters(adapters, must_exist=True)
        """The LoRA adapters applied to the model (``core.adapters``), checked to fit it
        when it loads."""
        self.source = resolve_model(model, purpose=purpose)
        refusal = self.refuses(self.source)
        if refusal is not None:
            raise ModelNotFoundError(f"{refusal}{self.refusal_hint}")
        self._chat_template = chat_template
        self._loaded: LoadedT | None = None
        self._load_lock = threading.Lock()

    def __repr__(self) -> str:
        state = "loaded" if self.is_loaded else "not loaded"
        return f"{type(self).__name__}({self.source.name!r}, {state})"

    # -- lifecycle -------------------------------------------------------------------
    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> None:
        self._ensure_loaded()

    @property
    def generating(self) -> bool:
        """Whether a generation is running or waiting now (never loads the model)."""
        loaded = self._loaded
        return loaded is not None and self._generating(loaded)

    def _generating(self, loaded: LoadedT) -> bool:
        return False

    def engine(self, *, load: bool = True) -> LoadedT | None:
        """The loaded model's engine state, for tests and diagnostics (read it, do not
        change it): llama.cpp's ``Llama``, its slot scheduler and grammar cache, or
        transformers' model, tokenizer and batcher. ``load=False`` gives None rather than
        loading the model."""
        return self._ensure_loaded() if load else self._loaded

    def _ensure_loaded(self) -> LoadedT:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._load_lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    def _ensure_loaded_timed(self) -> tuple[LoadedT, float]:
        """``_ensure_loaded``, and the seconds this call spent loading (0 when loaded)."""
        started = time.perf_counter()
        was_loaded = self.is_loaded
        loaded = self._ensure_loaded()
        return loaded, 0.0 if was_loaded else time.perf_counter() - started

    @abstractmethod
    def _load(self) -> LoadedT:
        """Load the model (called once, under the load lock)."""

    # -- prompts ---------------------------------------------------------------------
    @abstractmethod
    def _traits(self, loaded: LoadedT) -> TemplateTraits:
        """What the model's chat template can do."""

    @abstractmethod
    def _template(self, loaded: LoadedT) -> str | None:
        """The chat template in use (``chat_template=`` or the model's own), if any."""

    @abstractmethod
    def _apply_template(self, loaded: LoadedT, messages: list[dict[str, Any]],
                        variables: dict[str, Any]) -> str:
        """The model's chat template rendered over template-ready message dicts."""

    @abstractmethod
    def _family(self, loaded: LoadedT) -> str | None:
        """The model's family (config ``model_type`` / GGUF architecture)."""

    def chat_template(self) -> str | None:
        return self._template(self._ensure_loaded())

    def sampling_preset(self, config: GenerationConfig) -> dict[str, Any]:
        """The family's sampling for the request's mode (Qwen3's, ``catalog.qwen3``);
        loads the model to read its family."""
        loaded = self._ensure_loaded()
        return family_sampling(self._family(loaded), config.think,
                               self._traits(loaded).thinking_switch)

    def thinking_control(self) -> str | None:
        return self._traits(self._ensure_loaded()).thinking_control

    def render_chat(self, messages: list[ChatMessage],
                    config: GenerationConfig | None = None) -> str:
        """The exact prompt text the chat template makes of ``messages`` and ``config``."""
        return self._render(self._ensure_loaded(), messages, config or GenerationConfig())

    def _render(self, loaded: LoadedT, messages: list[ChatMessage],
                config: GenerationConfig) -> str:
        dicts, variables = template_inputs(messages, config, self._traits(loaded),
                                           self.source.name)
        if not self._template(loaded):
            return plain_chat_prompt(dicts)
        return self._apply_template(loaded, dicts, variables)

    # -- generation set-up -----------------------------------------------------------
    def _generation(self, loaded: LoadedT, prompt: str, prompt_tokens: int,
                    window: int | None, config: GenerationConfig, load_seconds: float
                    ) -> Generation:
        """Check that the prompt fits the context window, and set up parsing: so a bad
        request fails before its stream starts."""
        room = (window - prompt_tokens) if window else None
        if room is not None and room <= 0:
            raise InvalidRequestError(
                f"the prompt has {prompt_tokens} tokens and fills the {window}-token context "
                f"window of {self.source.name}; shorten the prompt or the history")
        # No max_tokens means "until the end of the turn or of the context window".
        limit = config.max_tokens or room or DEFAULT_MAX_TOKENS
        max_new = min(limit, room) if room else limit
        starts_thinking = opens_thinking(prompt)
        parser = ResponseParser(tool_names=config.tool_names,
                                parse_tool_calls=config.tools_active,
                                starts_in_thinking=starts_thinking,
                                forced_tool_call=config.forced_call)
        assembler = ChunkAssembler(config, parser, prompt_tokens=prompt_tokens,
                                   max_new=max_new, load_seconds=load_seconds)
        thinking = thinking_mode(self._traits(loaded), config, starts_thinking)
        constrained = config.response_format is not None or config.forced_call
        budget = (max(1, int(max_new * CONSTRAINED_THINKING_SHARE))
                  if constrained and thinking != "none" else None)
        return Generation(max_new, thinking, assembler, budget)

    def _constrained_decoder(self, generation: Generation, config: GenerationConfig,
                             grammars: Grammars, piece: Callable[[int], str]
                             ) -> ConstrainedDecoder | None:
        """The decoder that enforces the request's form (``decoding.grammar``), or None for
        free text; made before the stream starts, so a bad schema fails the call."""
        plan = request_plan(config, generation.thinking)
        if plan is None:
            return None
        for relaxation in plan.relaxations:
            warnings.warn(relaxation, SchemaRelaxationWarning, stacklevel=5)
        return ConstrainedDecoder(plan, grammars, max_new=generation.max_new,
                                  thinking_budget=generation.thinking_budget, piece=piece)


def plain_chat_prompt(messages: list[dict[str, Any]]) -> str:
    """A readable prompt for models that ship no chat template (base models)."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


PROMPT_CHUNK = 256
"""Prompt tokens a request reads per step while other requests are generating, on both
in-process backends: at most one such chunk of delay per running stream per step (~0.1-0.2
s for a small model on a 2-core CPU), so a long new prompt never stalls them for long."""


def common_prefix(cached: list[int], prompt: list[int]) -> int:
    """How many leading tokens ``cached`` and ``prompt`` share (list comparisons, which
    run in C, halving the range: prompts of thousands of tokens are compared per admission
    against every slot)."""
    low, high = 0, min(len(cached), len(prompt))
    while low < high:  # the first low tokens are equal; high or fewer are
        middle = (low + high + 1) // 2
        if cached[low:middle] == prompt[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low
