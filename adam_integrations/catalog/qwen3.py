"""The Qwen3 catalog: the size aliases of the original design note and their real ids.

The design note's ``Qwen/Qwen3-<size>-Chat`` ids do not exist: the non-Base Qwen3
repositories are the chat (hybrid-thinking) models. Those ids are accepted with a warning
naming the real id. See shared/QWEN3.md for the facts behind this table.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Qwen3Model:
    """One Qwen3 chat model: its alias, Hugging Face id and Ollama tag."""

    alias: str
    hf_id: str
    ollama_tag: str
    native_context: int


QWEN3_MODELS: tuple[Qwen3Model, ...] = (
    Qwen3Model("qwen3_small", "Qwen/Qwen3-0.6B", "qwen3:0.6b", 32_768),
    Qwen3Model("qwen3_medium", "Qwen/Qwen3-1.7B", "qwen3:1.7b", 32_768),
    Qwen3Model("qwen3_large", "Qwen/Qwen3-4B", "qwen3:4b", 32_768),
    Qwen3Model("qwen3_xl", "Qwen/Qwen3-8B", "qwen3:8b", 32_768),
    Qwen3Model("qwen3_xxl", "Qwen/Qwen3-14B", "qwen3:14b", 32_768),
    Qwen3Model("qwen3_xxxl", "Qwen/Qwen3-32B", "qwen3:32b", 32_768),
    Qwen3Model("qwen3_moe_small", "Qwen/Qwen3-30B-A3B", "qwen3:30b", 32_768),
    Qwen3Model("qwen3_moe_large", "Qwen/Qwen3-235B-A22B", "qwen3:235b", 32_768),
)


def find_qwen3(name: str) -> Qwen3Model | None:
    """The catalog entry for an alias, a real HF id, or a legacy ``-Chat`` id."""
    wanted = name.strip()
    for model in QWEN3_MODELS:
        if wanted.lower() in (model.alias, model.hf_id.lower()):
            return model
        if wanted.lower() == f"{model.hf_id}-Chat".lower():
            warnings.warn(
                f"{wanted!r} does not exist on the Hugging Face hub; using the real chat "
                f"model {model.hf_id!r} (Qwen3 chat repos have no -Chat suffix)",
                UserWarning,
                stacklevel=3,
            )
            return model
    return None


def is_qwen3_family(family: str | None) -> bool:
    """Whether a model family (config ``model_type`` / GGUF architecture) is Qwen3."""
    return bool(family) and family.lower().startswith("qwen3")


def with_qwen3_sampling(config: Any, family: str | None, thinks_by_default: bool) -> Any:
    """``config`` with the Qwen team's sampling for its mode, for Qwen3 models when the
    caller chose no sampling parameter; otherwise ``config`` unchanged."""
    if config.sampling_given or not is_qwen3_family(family):
        return config
    thinking = config.think if config.think is not None else thinks_by_default
    return config.merged(**sampling_preset(thinking))


def sampling_preset(thinking: bool) -> dict[str, float | int]:
    """The Qwen team's recommended sampling for thinking and non-thinking mode."""
    if thinking:
        return {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0}
    return {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "min_p": 0.0}
