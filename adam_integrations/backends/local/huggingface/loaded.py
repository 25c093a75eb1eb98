"""What exists only while a transformers model is in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adam_integrations.core.prompt import TemplateTraits
from adam_integrations.decoding.grammar import Grammars

if TYPE_CHECKING:
    from adam_integrations.backends.local.huggingface.adapters import ActiveAdapters
    from adam_integrations.backends.local.huggingface.embedding import EmbeddingQueue
    from adam_integrations.backends.local.huggingface.generation import Batcher


@dataclass
class LoadedModel:
    """A loaded transformers model, its tokenizer and what was read with them."""

    model: Any
    tokenizer: Any
    kind: str  # "causal" or "embedding"
    folder: Path
    device: str
    dtype: Any
    """The weights' torch dtype ("int8" for an ONNX Runtime encoder)."""
    load_seconds: float
    parameter_count: int = 0
    from_conversion_cache: bool | None = None
    autocast: Any = None
    """The torch dtype the forward pass computes in under ``torch.autocast`` (embedding
    models on CPUs with native bf16: ``devices.embedding_autocast``), or None."""
    pooling: str = "mean"
    normalize: bool = False
    max_length: int | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    eos_ids: frozenset[int] = frozenset()
    gguf_path: Path | None = None
    quantization: str | None = None
    family: str | None = None
    traits: TemplateTraits = field(default_factory=lambda: TemplateTraits.of(None))
    grammars: Grammars | None = None  # set for chat models
    pad_id: int = 0
    """The token prompts are padded with in a batch (chat models)."""
    batcher: Batcher | None = None
    """Concurrent requests batched together (chat models)."""
    adapters: ActiveAdapters | None = None
    """The LoRA adapters injected (``adapters=``) and which of them apply now."""
    embeddings: EmbeddingQueue | None = None
    """Concurrent requests embedded together (embedding models)."""
