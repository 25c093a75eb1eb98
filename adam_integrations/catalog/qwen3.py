"""The Qwen3 catalog: every size with its real ids, shape and files.

The ``Qwen/Qwen3-<size>-Chat`` ids that circulate (the project's original note used
them) do not exist: the non-Base Qwen3
repositories are the chat (hybrid-thinking) models. Those ids are accepted with a warning
naming the real id. Each entry carries what the memory estimate needs (parameters,
layers, KV heads, head_dim) and where the weights live (Hugging Face id, official GGUF
repository and its files per quantization, Ollama tag).

Context windows are reported as they are: 32,768 tokens natively for the hybrid models
(YaRN stretches the larger ones to 131,072, switched on only when a requested context
needs it), 262,144 for the 2507 variants.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["hybrid", "instruct", "thinking", "embedding"]

# The quantizations the official Qwen GGUF repositories publish (the 0.6B repo: Q8_0 only).
OFFICIAL_QUANTS = ("Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M")
# Approximate bits per weight of GGUF quantizations (file size x 8 / parameters of the
# official GGUFs), and of plain dtypes.
BITS_PER_WEIGHT = {"Q8_0": 8.5, "Q6_K": 6.6, "Q5_K_M": 5.7, "Q5_0": 5.5, "Q4_K_M": 4.9,
                   "Q4_0": 4.6, "Q3_K_M": 4.0, "Q2_K": 3.2, "F16": 16.0, "BF16": 16.0,
                   "float32": 32.0, "bfloat16": 16.0, "float16": 16.0}


@dataclass(frozen=True)
class Qwen3Model:
    """One Qwen3 model: alias, ids, shape, context and files."""

    alias: str
    hf_id: str
    ollama_tag: str
    parameters: float          # total, in units (not billions)
    layers: int
    q_heads: int
    kv_heads: int
    native_context: int
    yarn_context: int | None = None
    active_parameters: float | None = None   # MoE: parameters used per token
    non_embedding_parameters: float | None = None
    head_dim: int = 128
    mode: Mode = "hybrid"
    embedding_dimension: int | None = None
    quants: tuple[str, ...] = OFFICIAL_QUANTS

    @property
    def moe(self) -> bool:
        return self.active_parameters is not None

    @property
    def name(self) -> str:
        return self.hf_id.split("/", 1)[1]

    @property
    def gguf_repo(self) -> str:
        """The official GGUF repository (e.g. ``Qwen/Qwen3-8B-GGUF``)."""
        return f"{self.hf_id}-GGUF"

    def gguf_file(self, quantization: str) -> str:
        """The file name for a quantization in the official GGUF repository."""
        if quantization not in self.quants:
            raise KeyError(f"{self.gguf_repo} publishes {', '.join(self.quants)}, "
                           f"not {quantization}")
        return f"{self.name}-{quantization}.gguf"

    @property
    def max_context(self) -> int:
        return self.yarn_context or self.native_context

    @property
    def size_label(self) -> str:
        """The size the model is published under (``14B``, ``30B-A3B``: the name in its
        repository id), not the parameter count rounded (Qwen3-14B has 14.8B).

        Example:
            >>> find_qwen3("qwen3_xxl").size_label, find_qwen3("qwen3_moe_small").size_label
            ('14B', '30B-A3B')
        """
        match = re.search(r"-(\d+(?:\.\d+)?B(?:-A\d+(?:\.\d+)?B)?)", self.name)
        return match.group(1) if match else f"{self.parameters / 1e9:.1f}B"


def _hybrid(alias: str, size: str, tag: str, params: float, non_emb: float, layers: int,
            q: int, kv: int, yarn: bool = True, quants: tuple[str, ...] = OFFICIAL_QUANTS,
            active: float | None = None) -> Qwen3Model:
    return Qwen3Model(alias, f"Qwen/Qwen3-{size}", f"qwen3:{tag}", params, layers, q, kv,
                      32_768, 131_072 if yarn else None, active_parameters=active,
                      non_embedding_parameters=non_emb, quants=quants)


QWEN3_MODELS: tuple[Qwen3Model, ...] = (
    _hybrid("qwen3_small", "0.6B", "0.6b", 0.6e9, 0.44e9, 28, 16, 8, yarn=False,
            quants=("Q8_0",)),
    _hybrid("qwen3_medium", "1.7B", "1.7b", 1.7e9, 1.4e9, 28, 16, 8, yarn=False),
    _hybrid("qwen3_large", "4B", "4b", 4.0e9, 3.6e9, 36, 32, 8),
    _hybrid("qwen3_xl", "8B", "8b", 8.2e9, 6.95e9, 36, 32, 8),
    _hybrid("qwen3_xxl", "14B", "14b", 14.8e9, 13.2e9, 40, 40, 8),
    _hybrid("qwen3_xxxl", "32B", "32b", 32.8e9, 31.2e9, 64, 64, 8),
    _hybrid("qwen3_moe_small", "30B-A3B", "30b", 30.5e9, 29.9e9, 48, 32, 4, active=3.3e9),
    _hybrid("qwen3_moe_large", "235B-A22B", "235b", 235e9, 234e9, 94, 64, 4, active=22e9,
            quants=("Q4_K_M", "Q8_0")),
)

QWEN3_2507_MODELS: tuple[Qwen3Model, ...] = tuple(
    Qwen3Model(f"qwen3_{size.lower().replace('-', '_')}_{mode}_2507",
               f"Qwen/Qwen3-{size}-{mode.capitalize()}-2507",
               f"qwen3:{size.lower()}-{mode}-2507-q4_K_M",
               params, layers, q, kv, 262_144, active_parameters=active, mode=mode,
               quants=("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"))
    for size, params, layers, q, kv, active in (
        ("4B", 4.0e9, 36, 32, 8, None), ("30B-A3B", 30.5e9, 48, 32, 4, 3.3e9),
        ("235B-A22B", 235e9, 94, 64, 4, 22e9))
    for mode in ("instruct", "thinking")  # type: ignore[misc]
)

# The coder model the "code" domain prefers where it fits (Qwen3-Coder, 2507 generation).
QWEN3_CODER_MODELS: tuple[Qwen3Model, ...] = (
    Qwen3Model("qwen3_coder_moe_small", "Qwen/Qwen3-Coder-30B-A3B-Instruct", "qwen3-coder:30b",
               30.5e9, 48, 32, 4, 262_144, active_parameters=3.3e9, mode="instruct",
               quants=("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")),
)

QWEN3_EMBEDDING_MODELS: tuple[Qwen3Model, ...] = (
    Qwen3Model("qwen3_embedding_small", "Qwen/Qwen3-Embedding-0.6B",
               "qwen3-embedding:0.6b", 0.6e9, 28, 16, 8, 32_768, mode="embedding",
               embedding_dimension=1024, quants=("Q8_0", "F16")),
    Qwen3Model("qwen3_embedding_large", "Qwen/Qwen3-Embedding-4B", "qwen3-embedding:4b",
               4.0e9, 36, 32, 8, 32_768, mode="embedding", embedding_dimension=2560,
               quants=("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16")),
    Qwen3Model("qwen3_embedding_xl", "Qwen/Qwen3-Embedding-8B", "qwen3-embedding:8b",
               8.0e9, 36, 32, 8, 32_768, mode="embedding", embedding_dimension=4096,
               quants=("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16")),
)

ALL_QWEN3: tuple[Qwen3Model, ...] = (QWEN3_MODELS + QWEN3_2507_MODELS + QWEN3_CODER_MODELS
                                     + QWEN3_EMBEDDING_MODELS)


def find_qwen3(name: str) -> Qwen3Model | None:
    """The catalog entry for an alias, a real HF id, an Ollama tag, or a legacy ``-Chat``
    id (with a warning naming the real id)."""
    wanted = name.strip().lower()
    for model in ALL_QWEN3:
        if wanted in (model.alias, model.hf_id.lower(), model.ollama_tag.lower()):
            return model
        if wanted == f"{model.hf_id}-Chat".lower():
            warnings.warn(
                f"{name.strip()!r} does not exist on the Hugging Face hub; using the real chat "
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
