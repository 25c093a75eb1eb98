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

The generations after Qwen3-2507 (Qwen3-Next, Qwen3.5, Qwen3.6, Qwen3.8, Qwen3-Coder-Next,
Qwen3-Reranker) follow, each with the source its ids and numbers were checked against
(``source``). Where a model's attention shape could not be verified its shape is left at
zero (``shape_known`` False): it is listed, resolvable and loadable, but the hardware pick
cannot estimate its memory and passes over it. Where no GGUF repository or Ollama tag could
be verified, ``quants`` is empty or ``ollama_tag`` None.

Aliases: the seed's names (``qwen3_small`` ... ``qwen3_xxxl``, ``qwen3_moe_*``) keep their
meaning; every later model is also named ``qwen<generation>_<size>`` in lower case with
``-`` as ``_`` (``qwen3.5_9b``, ``qwen3.5_35b_a3b``, ``qwen3.6_27b``,
``qwen3_next_80b_a3b_instruct``), and by its Ollama tag where one exists (``qwen3.5:9b``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["hybrid", "instruct", "thinking", "embedding", "reranker"]

# Where the seed entries' numbers come from (ids, layers, heads, contexts: the model cards).
QWEN3_CARDS = "the Qwen3 model cards (huggingface.co/Qwen/Qwen3-*), ../shared/QWEN3.md"
# models.dev data as langchain-huggingface 1.2.3 ships it (langchain_huggingface/data/
# _profiles.py): ids, context windows, output limits, image input, release dates.
MODELS_DEV = "models.dev via langchain-huggingface 1.2.3 data/_profiles.py"
# Every Qwen3.5 id, and the GGUF repositories with their quantizations (unsloth's: Qwen
# publishes no GGUF for Qwen3.5): Xinference's model list,
# github.com/xorbitsai/inference doc/source/models/builtin/llm/qwen3.5.rst.
XINFERENCE_QWEN35 = "xorbitsai/inference doc/source/models/builtin/llm/qwen3.5.rst"
# Attention shapes of Qwen3.5 and Qwen3-Next (layers, query/KV heads, head_dim 256, vocab,
# one full-attention layer in 4): THUDM/slime scripts/models/qwen3.5-*.sh, qwen3-next-*.sh.
SLIME = "THUDM/slime scripts/models/"

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
    ollama_tag: str | None
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
    generation: str = "3"
    full_attention_interval: int = 1
    """Hybrid attention (Qwen3-Next, Qwen3.5, 3.6): one layer in this many keeps a KV
    cache; the others are linear attention with a small fixed state."""
    vocab: int = 151_936
    gguf: str | None = None
    """The GGUF repository when it is not the official ``<hf_id>-GGUF``."""
    ollama_quants: tuple[str, ...] | None = None
    """The quantizations with an Ollama tag (``<tag>-q8_0``); None: the same as ``quants``."""
    image_inputs: bool = False
    max_output_tokens: int | None = None
    preserve_thinking: bool = False
    """The template keeps earlier turns' reasoning when asked (``preserve_thinking``)."""
    thinks_by_default: bool = True
    source: str = QWEN3_CARDS

    @property
    def moe(self) -> bool:
        return self.active_parameters is not None

    @property
    def shape_known(self) -> bool:
        """Whether the attention shape is verified (the pick needs it for its estimate)."""
        return self.layers > 0 and self.kv_heads > 0

    @property
    def kv_layers(self) -> int:
        """Layers that keep a KV cache (all, but one in ``full_attention_interval`` for
        the hybrid-attention generations)."""
        return -(-self.layers // self.full_attention_interval)

    @property
    def thinking(self) -> str:
        """How its thinking is set: "switch" (``enable_thinking``), "always" or "none"."""
        return {"hybrid": "switch", "thinking": "always"}.get(self.mode, "none")

    @property
    def name(self) -> str:
        return self.hf_id.split("/", 1)[1]

    @property
    def gguf_repo(self) -> str | None:
        """The GGUF repository (the official ``Qwen/Qwen3-8B-GGUF``, or the one named in
        ``gguf`` where Qwen publishes none); None where none is known."""
        if not self.quants:
            return None
        return self.gguf or f"{self.hf_id}-GGUF"

    def gguf_file(self, quantization: str) -> str:
        """The file name for a quantization in the official GGUF repository."""
        if quantization not in self.quants:
            published = (f"{self.gguf_repo} publishes {', '.join(self.quants)}"
                         if self.quants else f"no GGUF repository of {self.hf_id} is known")
            raise KeyError(f"{published}, not {quantization}")
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
        match = re.search(r"-(\d+(?:\.\d+)?[BT](?:-A\d+(?:\.\d+)?B)?)", self.name)
        if match:
            return match.group(1)
        active = f"-A{self.active_parameters / 1e9:g}B" if self.active_parameters else ""
        return f"{self.parameters / 1e9:g}B{active}"


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
               quants=("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"), generation="3-2507")
    for size, params, layers, q, kv, active in (
        ("4B", 4.0e9, 36, 32, 8, None), ("30B-A3B", 30.5e9, 48, 32, 4, 3.3e9),
        ("235B-A22B", 235e9, 94, 64, 4, 22e9))
    for mode in ("instruct", "thinking")  # type: ignore[misc]
)

# The coder model the "code" domain prefers where it fits (Qwen3-Coder, 2507 generation).
QWEN3_CODER_MODELS: tuple[Qwen3Model, ...] = (
    Qwen3Model("qwen3_coder_moe_small", "Qwen/Qwen3-Coder-30B-A3B-Instruct", "qwen3-coder:30b",
               30.5e9, 48, 32, 4, 262_144, active_parameters=3.3e9, mode="instruct",
               quants=("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"), generation="3-2507",
               max_output_tokens=65_536),
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

# Ollama's library tags for Qwen3.5 (qwen3.5:0.8b ... qwen3.5:35b, one Q4_K_M tag each):
# tinyweights.dev/posts/qwen3-5-tiny-multimodal-thinking-model, insiderllm.com/guides/
# qwen-3-5-small-models-9b-beats-30b (also: 0.8B-9B released 2026-03-02, 24/24/32/32 layers).
OLLAMA_QWEN35 = "tinyweights.dev qwen3-5-tiny-multimodal-thinking-model; insiderllm.com"
_UNSLOTH_QUANTS = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0")
_HYBRID_CONTEXT = 262_144  # every Qwen3-Next, 3.5, 3.6 and 3.8 model (models.dev)


def _later(generation: str, size: str, params: float, layers: int, q: int, kv: int, *,
           active: float | None = None, tag: str | None = None, gguf: bool = True,
           vocab: int = 248_320, output: int | None = 65_536, image: bool = True,
           source: str, **extra: Any) -> Qwen3Model:
    """A model of a generation after Qwen3-2507: hybrid attention (one full-attention layer
    in four, head_dim 256), 262,144 tokens of context, thinking on by default."""
    family = {"3.5": "Qwen3.5", "3.6": "Qwen3.6", "3.8": "Qwen3.8"}[generation]
    alias = f"qwen{generation}_{size.lower().replace('-', '_')}"
    return Qwen3Model(
        alias, f"Qwen/{family}-{size}", tag, params, layers, q, kv, _HYBRID_CONTEXT,
        active_parameters=active, head_dim=256, generation=generation,
        full_attention_interval=4, vocab=vocab, image_inputs=image, max_output_tokens=output,
        gguf=f"unsloth/{family}-{size}-GGUF" if gguf else None,
        quants=_UNSLOTH_QUANTS if gguf else (), ollama_quants=("Q4_K_M",) if tag else (),
        source=source, **extra)


# Qwen3.5 (2026-02/03): ids and GGUF repositories from Xinference's list; shapes from slime
# (0.8B, 27B, 35B-A3B, 397B-A17B), the Qwen3.5-9B and -4B model cards as quoted by
# TevunahAi/Qwen3.5-9B-GPTQ (32 layers, 16 Q / 4 KV heads, 8.95B parameters) and
# kshitijthakkar/qwen3.5-moe-4.7B-d4B (the 4B: 32 layers, 16 Q / 4 KV), featherless.ai's
# Qwen3.5-4B-Base page (4.5B parameters); contexts and output limits from models.dev. The
# 2B (24 layers, KV heads unverified) and 122B-A10B (shape unverified) are listed without a
# shape. The 0.8B answers without thinking unless asked (developer.mittwald.de's Qwen3.5
# guide); unsloth publishes no Q4_K_M-class file for the 397B and 122B that the pick knows.
QWEN35_MODELS: tuple[Qwen3Model, ...] = (
    _later("3.5", "0.8B", 0.8e9, 24, 8, 2, tag="qwen3.5:0.8b", thinks_by_default=False,
           source=f"{XINFERENCE_QWEN35}; {SLIME}qwen3.5-0.8B.sh; {OLLAMA_QWEN35}"),
    _later("3.5", "2B", 2.0e9, 0, 0, 0, tag="qwen3.5:2b",
           source=f"{XINFERENCE_QWEN35}; {OLLAMA_QWEN35}"),
    _later("3.5", "4B", 4.5e9, 32, 16, 4, tag="qwen3.5:4b",
           source=f"{XINFERENCE_QWEN35}; kshitijthakkar/qwen3.5-moe-4.7B-d4B card; "
                  f"featherless.ai Qwen3.5-4B-Base; {OLLAMA_QWEN35}"),
    _later("3.5", "9B", 8.95e9, 32, 16, 4, tag="qwen3.5:9b",
           source=f"{XINFERENCE_QWEN35}; {MODELS_DEV}; TevunahAi/Qwen3.5-9B-GPTQ card; "
                  f"{OLLAMA_QWEN35}"),
    _later("3.5", "27B", 27e9, 64, 24, 4, tag="qwen3.5:27b",
           source=f"{XINFERENCE_QWEN35}; {MODELS_DEV}; {SLIME}qwen3.5-27B.sh; "
                  f"{OLLAMA_QWEN35}"),
    _later("3.5", "35B-A3B", 35e9, 40, 16, 2, active=3e9, tag="qwen3.5:35b",
           source=f"{XINFERENCE_QWEN35}; {MODELS_DEV}; {SLIME}qwen3.5-35B-A3B.sh; "
                  f"{OLLAMA_QWEN35}"),
    _later("3.5", "122B-A10B", 122e9, 0, 0, 0, active=10e9, gguf=False,
           source=f"{XINFERENCE_QWEN35}; {MODELS_DEV}"),
    _later("3.5", "397B-A17B", 397e9, 60, 32, 2, active=17e9, gguf=False, output=32_768,
           source=f"{XINFERENCE_QWEN35}; {MODELS_DEV}; {SLIME}qwen3.5-397B-A17B.sh"),
)

# Qwen3.6 (2026-04, models.dev): the Qwen3.5 architecture, with ``preserve_thinking`` in
# its template (keep earlier turns' reasoning: the official template as
# nwzjk/buun-Qwen3.6-chat_template documents it; earendil-works/pi issue 3325). The 35B-A3B
# shape is its model card's (quoted in MERA's submission 181: 40 layers, 16 Q / 2 KV heads,
# head_dim 256, 3 DeltaNet + 1 attention layers x 10); the 27B's is unverified. No
# Ollama library tag or GGUF repository was verified.
QWEN36_MODELS: tuple[Qwen3Model, ...] = (
    _later("3.6", "27B", 27e9, 0, 0, 0, gguf=False, preserve_thinking=True,
           source=MODELS_DEV),
    _later("3.6", "35B-A3B", 35e9, 40, 16, 2, active=3e9, gguf=False,
           preserve_thinking=True, source=f"{MODELS_DEV}; mera.a-ai.ru submission 181"),
)

# Qwen3.8 (2026-08, models.dev): the 27B, with image input and reasoning; its shape, tags
# and thinking levels are not verified (its chat template, once loaded, says which
# ``reasoning_effort`` levels it takes). Qwen3.8-2.4T-A95B is left out: no source confirms
# that its weights can be downloaded.
QWEN38_MODELS: tuple[Qwen3Model, ...] = (
    _later("3.8", "27B", 27e9, 0, 0, 0, gguf=False, output=32_768, source=MODELS_DEV),
)

# Qwen3-Next (2025-09) and Qwen3-Coder-Next (2026-02), 80B total / 3B active, 48 layers
# (12 with full attention), 16 Q / 2 KV heads of 256, Qwen3's vocabulary (slime
# qwen3-next-80B-A3B.sh; Qwen3-Coder-Next's card as quoted by b-lab.team: 48 layers, the
# same hybrid layout, a coding-tuned Qwen3-Next). Text only; no GGUF repository or
# Ollama tag verified.
QWEN3_NEXT_MODELS: tuple[Qwen3Model, ...] = tuple(
    Qwen3Model(alias, hf_id, None, 80e9, 48, 16, 2, _HYBRID_CONTEXT, active_parameters=3e9,
               head_dim=256, mode=mode, quants=(), generation="3-next",
               full_attention_interval=4, max_output_tokens=output,
               source=f"{MODELS_DEV}; {SLIME}qwen3-next-80B-A3B.sh" + extra)
    for alias, hf_id, mode, output, extra in (
        ("qwen3_next_80b_a3b_instruct", "Qwen/Qwen3-Next-80B-A3B-Instruct", "instruct",
         66_536, ""),
        ("qwen3_next_80b_a3b_thinking", "Qwen/Qwen3-Next-80B-A3B-Thinking", "thinking",
         131_072, ""),
        ("qwen3_coder_next", "Qwen/Qwen3-Coder-Next", "instruct", 65_536,
         "; b-lab.team Qwen3-Coder-Next card"),
    )
)

# Qwen3-Reranker 0.6B/4B/8B: 32,768 tokens of context (gigarouter.ai's Qwen3-Reranker
# page); listed so their ids resolve; shapes unverified, no pick uses them.
QWEN3_RERANKER_MODELS: tuple[Qwen3Model, ...] = tuple(
    Qwen3Model(f"qwen3_reranker_{size.lower()}", f"Qwen/Qwen3-Reranker-{size}", None, params,
               0, 0, 0, 32_768, mode="reranker", quants=(), source="gigarouter.ai")
    for size, params in (("0.6B", 0.6e9), ("4B", 4e9), ("8B", 8e9))
)

# The chat models of every generation, newest generation first (the pick's order).
GENERATIONS = ("3.8", "3.6", "3.5", "3-next", "3-2507", "3")
LATER_CHAT_MODELS: tuple[Qwen3Model, ...] = (QWEN38_MODELS + QWEN36_MODELS + QWEN35_MODELS
                                             + QWEN3_NEXT_MODELS)

ALL_QWEN3: tuple[Qwen3Model, ...] = (QWEN3_MODELS + QWEN3_2507_MODELS + QWEN3_CODER_MODELS
                                     + QWEN3_EMBEDDING_MODELS + LATER_CHAT_MODELS
                                     + QWEN3_RERANKER_MODELS)


def find_qwen3(name: str) -> Qwen3Model | None:
    """The catalog entry for an alias, a real HF id, an Ollama tag, or a legacy ``-Chat``
    id (with a warning naming the real id)."""
    wanted = name.strip().lower()
    for model in ALL_QWEN3:
        if wanted in (model.alias, model.hf_id.lower(), (model.ollama_tag or "").lower()):
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


def family_sampling(family: str | None, think: bool | None, thinks_by_default: bool
                    ) -> dict[str, float | int]:
    """The Qwen team's sampling for a Qwen3 model in the request's mode (``think``, else
    the model's default), as GenerationConfig fields; ``{}`` for other families. Applied
    by ``served.ServedModel`` when nothing else chose a sampling parameter.

    Example:
        >>> family_sampling("qwen3", False, True)["temperature"]
        0.7
        >>> family_sampling("llama", None, False)
        {}
    """
    if not is_qwen3_family(family):
        return {}
    return sampling_preset(think if think is not None else thinks_by_default)


def sampling_preset(thinking: bool) -> dict[str, float | int]:
    """The Qwen team's recommended sampling for thinking and non-thinking mode."""
    if thinking:
        return {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0}
    return {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "min_p": 0.0}
