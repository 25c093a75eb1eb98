"""The model used when none is named, and ``resolve_model``, which falls back to it.

For chat: the pick for this machine when it is on disk (``catalog.selection``), else the
embedded model, saying what would be picked. For embeddings: the embedded all-MiniLM.
This is the catalog's policy, kept out of ``core.resolver``, which only parses and
locates references.
"""

from __future__ import annotations

import os
from dataclasses import replace

from adam_integrations.catalog.embedded import EMBEDDED_CHAT, EMBEDDED_EMBEDDING
from adam_integrations.catalog.names import resolve_reference
from adam_integrations.catalog.qwen3 import BITS_PER_WEIGHT, find_qwen3
from adam_integrations.catalog.selection import (
    MIN_SPEED,
    best_quantization,
    default_chat_reference,
)
from adam_integrations.core.resolver import local_source
from adam_integrations.core.types import ModelSource, Purpose


def default_model(purpose: Purpose = "chat", *, min_speed: float = MIN_SPEED) -> ModelSource:
    """The model for ``purpose`` when none is named, with the reason in its explanation
    (for chat: the pick for this machine that decodes at ``min_speed`` tokens/s or more)."""
    pick = ""
    if purpose == "chat":
        reference, pick = default_chat_reference(min_speed)
        if reference is not None:
            return replace(resolve_reference(reference), explanation=f"no model named; {pick}")
    model = EMBEDDED_EMBEDDING if purpose == "embedding" else EMBEDDED_CHAT
    why = (
        f"no model named; using the embedded default {model.description} "
        f"(offline fallback from the {model.distribution} package)"
    )
    if purpose == "rerank":
        why = (f"no reranker named; the embedded {model.description} reranks by "
               "Qwen3-Reranker's method, weakly: name a reranker (e.g. "
               "qwen3_reranker_0.6b) for good rankings")
    if pick:
        why = f"{why}; {pick}"
    return local_source(model.require_path(), name=model.name, embedded=True, explanation=why)


def shareable_gguf(source: ModelSource) -> ModelSource:
    """The GGUF to share with Ollama for ``source``: itself when it is a GGUF; for a Qwen3
    catalog model named by its safetensors repository, Qwen's official GGUF of that size
    (quantization for this machine, ``selection.best_quantization``), so one download
    serves transformers (which loads the GGUF), llama.cpp and Ollama. Not on disk: the hub
    GGUF repository, with an explanation naming the file, its size and the ``adam pull``
    that gets it. Any other model: ``source`` unchanged."""
    model = find_qwen3(source.location) if source.kind == "hub" and not source.is_gguf \
        else None
    if model is None or model.mode in ("embedding", "reranker") or not model.quants:
        return source
    quantization = best_quantization(model)
    reference = f"hf:{model.gguf_repo}:{quantization}"
    official = resolve_reference(reference)
    file = model.gguf_file(quantization)
    if official.kind == "gguf":
        return replace(official, explanation=(
            f"{source.explanation}; the GGUF {file} of {model.gguf_repo} ({quantization}, "
            "for this machine) from the Hugging Face cache, used in place by every backend"))
    size = model.parameters * BITS_PER_WEIGHT[quantization] / 8 / 1e9
    return replace(official, explanation=(
        f"{source.explanation}; to share it, the GGUF {file} from "
        f"{model.gguf_repo} (about {size:.1f} GB, {quantization} for this machine) is "
        f"needed and not on disk: `adam pull {reference}` gets it"))


def resolve_model(
    reference: str | os.PathLike[str] | ModelSource | None = None, *,
    purpose: Purpose = "chat", min_speed: float = MIN_SPEED,
) -> ModelSource:
    """``reference`` resolved (``core.resolver``), or the default for ``purpose`` when it
    is None or empty; a ``ModelSource`` is returned as it is.

    Example:
        >>> resolve_model("hf:Qwen/Qwen3-0.6B").location
        'Qwen/Qwen3-0.6B'
        >>> resolve_model(None, purpose="embedding").embedded     # doctest: +SKIP
        True
    """
    if isinstance(reference, ModelSource):
        return reference
    if reference is None or (isinstance(reference, str) and not reference.strip()):
        return default_model(purpose, min_speed=min_speed)
    return resolve_reference(reference)
