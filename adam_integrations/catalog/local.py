"""Whether a catalog model is already on this machine, and where.

Looks in the Hugging Face cache (the official GGUF repository's file for a quantization,
or a transformers snapshot with ``config.json``) and in Ollama's store (the model's tag),
without touching the network. A store that cannot be read counts as not holding it.
"""

from __future__ import annotations

from pathlib import Path

from adam_integrations.catalog.qwen3 import Qwen3Model
from adam_integrations.core.errors import AdamError
from adam_integrations.core.stores.hub import cached_snapshot
from adam_integrations.core.stores.ollama_store import find_model_blob


def local_path(model: Qwen3Model, backend: str, precision: str) -> Path | None:
    """The file or folder of ``model`` at ``precision`` on disk, or None."""
    if backend in ("llamacpp", "ollama"):
        snapshot = cached_snapshot(model.gguf_repo) if model.gguf_repo else None
        if snapshot is not None and precision in model.quants:
            candidate = snapshot / model.gguf_file(precision)
            if candidate.exists():
                return candidate
        if model.ollama_tag is None:
            return None
        tag = model.ollama_tag if precision == "Q4_K_M" else \
            f"{model.ollama_tag}-{precision.lower()}"
        try:
            return find_model_blob(tag)
        except AdamError:
            return None
    snapshot = cached_snapshot(model.hf_id)
    return snapshot if snapshot is not None and (snapshot / "config.json").exists() else None

