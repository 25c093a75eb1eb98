"""The settings LangChain's ``ChatAdam`` and LlamaIndex's ``AdamLLM`` share, in one place.

Both classes take the same model, backend, sampling, logprob, server and lifetime
settings and turn them into the same ``ModelManager`` and ``GenerationConfig``; only
what each framework names its own way stays in its adapter: the reasoning switch
(``reasoning`` in LangChain, as ChatOllama calls it; ``thinking`` in LlamaIndex, as its
Ollama class does) and LangChain's ``stop_sequences`` alias. A per-call ``model=`` runs
another model on the same settings (each model's manager made once and kept).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from adam_integrations.core.errors import UnknownOptionError
from adam_integrations.core.registry import did_you_mean
from adam_integrations.core.types import GenerationConfig
from adam_integrations.manager import ModelManager, server_options

GENERATION_OPTIONS = frozenset(f.name for f in fields(GenerationConfig))
"""What a call may set (``GenerationConfig``'s fields)."""


def refuse_unknown_fields(cls: type[BaseModel], data: dict[str, Any],
                          also: tuple[str, ...] = ()) -> None:
    """An UnknownOptionError naming each keyword ``cls`` has no field for (by name or
    alias), with the closest field names: a misspelt ``temprature=`` fails, as
    docs/errors.md promises, instead of being dropped. ``also``: keywords the class's
    ``__init__`` takes itself."""
    known = set(also)
    for name, info in cls.model_fields.items():
        known.add(name)
        aliases = [info.alias, info.validation_alias,
                   *getattr(info.validation_alias, "choices", ())]
        known.update(a for a in aliases if isinstance(a, str))
    unknown = sorted(set(data) - known)
    if unknown:
        public = {name for name in known if not name.startswith("_")}
        raise UnknownOptionError(
            f"{cls.__name__} has no field {', '.join(map(repr, unknown))}"
            f"{did_you_mean(unknown, public)}; backend options (device, n_ctx, ...) go "
            "in backend_options={...}")


class ChatDefaults(BaseModel):
    """The fields both frameworks' chat classes have (mixed into each)."""

    model: str | None = Field(default=None, description=(
        "Model reference (hf:..., a path, qwen3_small, ollama:<name>, ...); None = the "
        "default for this machine."))
    model_type: str = Field(default="auto", description=(
        "Backend name (see ModelRegistry); auto = llama.cpp for a GGUF on a machine "
        "without a GPU, transformers otherwise."))
    temperature: float | None = Field(default=None, description=(
        "Sampling temperature; 0 is greedy. None = the model's default."))
    max_tokens: int | None = Field(default=None, description=(
        "Most tokens to generate; None = until the turn or the context window ends."))
    top_p: float | None = Field(default=None)
    top_k: int | None = Field(default=None)
    seed: int | None = Field(default=None)
    stop: list[str] | None = Field(default=None, description=(
        "Stop sequences: generation ends there, and they are not part of the answer."))
    reasoning_effort: str | None = Field(default=None, description=(
        "A reasoning level, as OpenAI names it: the effort of a model that takes levels; "
        "thinking on for an on/off model; refused by a model that cannot think)."))
    preserve_thinking: bool | None = Field(default=None, description=(
        "Keep earlier turns' reasoning in the prompt (Qwen3.6's template switch)."))
    logprobs: bool | None = Field(default=None, description=(
        "Each generated token's log probability (LangChain: response_metadata['logprobs'];"
        " LlamaIndex: ChatResponse.logprobs)."))
    top_logprobs: int | None = Field(default=None, description=(
        "That many of the most likely tokens at each position too (0-20)."))
    keep_alive: float | str | None = Field(default=None, description=(
        "Unload the model after this idle time ('5m', seconds; 0 = after each call)."))
    domain: str | None = Field(default=None, description=(
        "A domain profile ('code', 'docker', ...) whose system prompt and sampling are "
        "used by default."))
    backend_options: dict[str, Any] = Field(default_factory=dict, description=(
        "Passed to the backend (device, dtype, n_ctx, chat_template, ...)."))
    adapters: list[Any] | None = Field(default=None, description=(
        "LoRA adapters applied to the model unmerged: PEFT folders (adam tune's output) or "
        "GGUF LoRA files, each a path or (path, scale); see core.adapters."))
    # A model on a server, as ChatOpenAI and ChatOllama name one: with model_type "openai",
    # "vllm", "sglang" or "llamacpp-server" (or "auto"), ``model`` is the engine's own id at
    # ``base_url``; with "ollama" (or an ``ollama:<name>`` model), the Ollama server there.
    # A local model refuses them (ModelManager says why): none is accepted and dropped.
    base_url: str | None = Field(default=None, description=(
        "A server: with model_type openai/vllm/sglang/llamacpp-server, the engine's base "
        "URL (the model is its own id there); with ollama, the Ollama server."))
    api_key: str | None = Field(default=None, description="The server's API key.")
    timeout: float | None = Field(default=None, description="Seconds per request to it.")
    max_retries: int | None = Field(default=None,
                                    description="Retries of a failed request to it.")

    _managers: dict[str | None, ModelManager] = PrivateAttr(default_factory=dict)

    def manager_for(self, model: str | None) -> ModelManager:
        """The manager running ``model`` on these settings (made once per model)."""
        if model not in self._managers:
            self._managers[model] = ModelManager(
                model_type=self.model_type, model=model, domain=self.domain,
                keep_alive=self.keep_alive, **self.backend_options, **server_options(self),
                **({"adapters": self.adapters} if self.adapters else {}))
        return self._managers[model]

    def generation_config(self, think: bool | str | None, per_call: dict[str, Any],
                          stop: list[str] | None = None,
                          framework: frozenset[str] = frozenset()) -> GenerationConfig:
        """These settings as a ``GenerationConfig``, with the reasoning switch ``think``
        and ``stop`` (the call's, else the settings') and the call's own options on top.
        A call's keyword that is neither a generation option nor one of the ``framework``'s
        own (its reasoning switch, what it passes itself) is refused by name, never
        dropped: ``invoke("hi", temprature=0.5)`` is an ``UnknownOptionError``."""
        unknown = sorted(set(per_call) - GENERATION_OPTIONS - framework)
        if unknown:
            raise UnknownOptionError(
                f"no generation option {', '.join(map(repr, unknown))}"
                f"{did_you_mean(unknown, set(GENERATION_OPTIONS))}; the options are "
                f"{', '.join(sorted(GENERATION_OPTIONS - {'think'}))}")
        options: dict[str, Any] = {
            "temperature": self.temperature, "max_tokens": self.max_tokens,
            "top_p": self.top_p, "top_k": self.top_k, "seed": self.seed,
            "stop": stop or self.stop or [], "think": think,
            "reasoning_effort": self.reasoning_effort,
            "preserve_thinking": self.preserve_thinking,
            "logprobs": self.logprobs, "top_logprobs": self.top_logprobs,
        }
        return GenerationConfig.from_options(options, per_call)
