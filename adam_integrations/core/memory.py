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
