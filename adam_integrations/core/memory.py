"""How much memory a model needs, by one formula (the one llama.cpp's and
Ollama's own estimates follow).

    need = W + KV + C + R
    W  = weights (the GGUF file's size for llama.cpp)
    KV = 2 x layers x kv_heads x head_dim x context x parallel x bytes per value (f16: 2)
    C  = compute buffers, about 0.1 x (W + KV), at least 0.5 GiB
    R  = runtime reserve of a GPU device (0 on the CPU)
    it fits when need <= 0.85 x the memory available

``largest_context`` inverts it: the longest context whose KV cache still fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from adam_integrations.core.stores.gguf_header import GGUFHeader

GIB = 1024**3
MIB = 1024**2
HEADROOM = 0.85   # fits: need <= 85% of the budget
TIGHT = 0.98      # tight: need <= 98%
PERFECT = 0.60    # perfect: need <= 60% (room for a longer context or a second model)
MIN_COMPUTE = 0.5 * GIB
DEVICE_RESERVE = {"cuda": 457 * MIB, "rocm": 457 * MIB, "metal": 512 * MIB, "cpu": 0}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one model needs, by part (``need = W + KV + C + R``)."""

    weights: float
    kv_cache: float
    compute: float
    reserve: float

    @property
    def total(self) -> float:
        return self.weights + self.kv_cache + self.compute + self.reserve

    def fit(self, budget: float) -> str:
        """"perfect", "good", "tight" or "does not fit" for ``budget`` bytes."""
        if budget <= 0:
            return "does not fit"
        share = self.total / budget
        if share <= PERFECT:
            return "perfect"
        if share <= HEADROOM:
            return "good"
        return "tight" if share <= TIGHT else "does not fit"

    def describe(self) -> str:
        return (f"{self.total / GIB:.1f} GiB = weights {self.weights / GIB:.1f} + KV cache "
                f"{self.kv_cache / GIB:.1f} + compute {self.compute / GIB:.1f} + reserve "
                f"{self.reserve / GIB:.1f}")


def estimate(weights: float, layers: int, kv_heads: int, head_dim: int, context: int, *,
             parallel: int = 1, kv_bytes: float = 2.0, device: str = "cpu",
             devices: int = 1) -> MemoryEstimate:
    """The memory formula for one model on ``devices`` devices of kind ``device``.

    Example (Qwen3-8B Q4_K_M at 32K context on one CUDA GPU, "about 10.5 GiB"):
        >>> e = estimate(8.2e9 * 4.9 / 8, 36, 8, 128, 32768, device="cuda")
        >>> round(e.total / GIB, 1)
        10.5
    """
    kv = kv_cache_bytes(layers, kv_heads, head_dim, context, parallel, kv_bytes)
    return MemoryEstimate(weights=weights, kv_cache=kv,
                          compute=max(0.1 * (weights + kv), MIN_COMPUTE),
                          reserve=DEVICE_RESERVE.get(device, 0) * devices)


def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, context: int, parallel: int = 1,
                   bytes_per_value: float = 2.0) -> float:
    """Bytes of the K and V caches.

    Example:
        >>> kv_cache_bytes(36, 8, 128, 32768) / GIB     # Qwen3-8B, 32K context, f16
        4.5
    """
    return 2.0 * layers * kv_heads * head_dim * context * parallel * bytes_per_value


def memory_needed(weights: float, kv_cache: float, reserve: float = 0.0) -> float:
    """Bytes needed to run: weights, KV cache, compute buffers and the device reserve."""
    return weights + kv_cache + max(0.1 * (weights + kv_cache), MIN_COMPUTE) + reserve


def kv_bytes_per_token(header: GGUFHeader) -> float | None:
    """KV-cache bytes per token of context (f16), from a GGUF header; None when the
    header lacks the attention shape (encoder-only or unusual architectures). Hybrid
    attention (Qwen3-Next, Qwen3.5: ``full_attention_interval``) keeps a KV cache on one
    layer in that many; the others hold a fixed recurrent state."""
    layers = header.field("block_count")
    interval = header.field("full_attention_interval")
    if layers and interval:
        layers = -(-int(layers) // int(interval))
    heads = header.field("attention.head_count")
    kv_heads = header.field("attention.head_count_kv") or heads
    width = header.field("embedding_length")
    head_dim = header.field("attention.key_length") or (width // _most(heads)
                                                        if width and heads else None)
    if not (layers and kv_heads and head_dim):
        return None
    return kv_cache_bytes(int(layers), _most(kv_heads), int(head_dim), 1)


def largest_context(weights: float, per_token: float, available: float,
                    reserve: float = 0.0) -> int:
    """The most tokens of context whose KV cache fits ``available`` bytes with headroom
    (0 when not even the weights fit)."""
    limit = HEADROOM * available - reserve
    room = min(limit / 1.1 - weights, limit - MIN_COMPUTE - weights)
    return max(0, int(room // per_token))


def _most(value: int | list[int]) -> int:
    """Per-layer values (some architectures list one per layer): the largest."""
    return int(max(value)) if isinstance(value, list) else int(value)


# -- training ----------------------------------------------------------------------------
ADAMW_STATES = 2
"""AdamW keeps two float32 values per trainable weight (the moving averages)."""


@dataclass(frozen=True)
class TrainingEstimate:
    """Bytes one training run needs, by part (``adam tune``'s check before it starts).

    ``need = 1.1 x (weights + adapter + gradients + optimizer + activations + runtime)``:

    - activations, per token: each layer keeps about ``10 x hidden + 4 x intermediate``
      values for the backward pass (norm inputs, queries, keys, values, attention output,
      the MLP's gate, up and product; PyTorch's fused attention keeps no token-by-token
      probabilities), or, with activation checkpointing, its input only, and one layer's
      worth while it is recomputed; and the output logits in float32 eight times (the
      logits, the loss's log-softmax and its gradient, the trainer's entropy and accuracy
      figures);
    - runtime: the framework itself (Python, PyTorch, the trainer), half a GiB;
    - a tenth on top for compute buffers. Fits when within ``HEADROOM`` of the memory
      available, as a model to run does.

    Measured on SmolLM2-135M (CPU, float32, 2,048 tokens a step): 7.7 GB peak resident
    memory without checkpointing (estimated 8.0), 5.0-5.1 GB with it, as 4 x 512 or
    2 x 1024 sequences (estimated 5.0).
    """

    weights: float
    adapter: float
    gradients: float
    optimizer: float
    activations: float
    runtime: float = 0.5 * GIB

    @property
    def total(self) -> float:
        return 1.1 * (self.weights + self.adapter + self.gradients + self.optimizer
                      + self.activations + self.runtime)

    def fits(self, budget: float) -> bool:
        return self.total <= HEADROOM * budget

    def describe(self) -> str:
        return (f"{_size(self.total)} = weights {_size(self.weights)} + adapter "
                f"{_size(self.adapter)} + gradients {_size(self.gradients)} + optimizer "
                f"{_size(self.optimizer)} + activations {_size(self.activations)} + runtime "
                f"{_size(self.runtime)}, and a tenth for compute buffers")


LOGIT_COPIES = 8


def training_estimate(*, parameters: int, trainable: int, weight_bytes: float,
                      full: bool, layers: int, hidden: int, intermediate: int,
                      vocab: int, batch: int, length: int, checkpointing: bool = False,
                      activation_bytes: float = 4.0, teacher_bytes: float = 0.0
                      ) -> TrainingEstimate:
    """The memory a fine-tuning run needs: ``parameters`` weights of ``weight_bytes``
    each, ``trainable`` of them trained (all with ``full``, else a LoRA adapter's, kept
    in float32), AdamW, and ``batch`` sequences of ``length`` tokens; a distillation
    teacher's weights (``teacher_bytes``) are counted with the weights.

    Example (SmolLM2-135M in float32, a rank-16 adapter on every linear layer, 4 x 512):
        >>> e = training_estimate(parameters=134_515_008, trainable=4_884_480,
        ...     weight_bytes=4, full=False, layers=30, hidden=576, intermediate=1536,
        ...     vocab=49152, batch=4, length=512)
        >>> round(e.total / 1e9, 1)
        8.0
    """
    adapter = 0.0 if full else trainable * 4.0
    gradient_bytes = weight_bytes if full else 4.0
    layer_values = 10 * hidden + 4 * intermediate
    kept = (layers * hidden + layer_values) if checkpointing else layers * layer_values
    activations = batch * length * (kept * activation_bytes + LOGIT_COPIES * vocab * 4.0)
    return TrainingEstimate(weights=parameters * weight_bytes + teacher_bytes,
                            adapter=adapter,
                            gradients=trainable * gradient_bytes,
                            optimizer=trainable * 4.0 * ADAMW_STATES,
                            activations=activations)


def _size(value: float) -> str:
    return f"{value / GIB:.1f} GiB" if value >= 0.1 * GIB else f"{value / MIB:.1f} MiB"
