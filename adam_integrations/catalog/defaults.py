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
from adam_integrations.catalog.selection import default_chat_reference
from adam_integrations.core.resolver import local_source, resolve
from adam_integrations.core.types import ModelSource, Purpose


def default_model(purpose: Purpose = "chat") -> ModelSource:
    """The model for ``purpose`` when none is named, with the reason in its explanation."""
    pick = ""
    if purpose == "chat":
        reference, pick = default_chat_reference()
        if reference is not None:
            return replace(resolve(reference), explanation=f"no model named; {pick}")
    model = EMBEDDED_CHAT if purpose == "chat" else EMBEDDED_EMBEDDING
    why = (
        f"no model named; using the embedded default {model.description} "
        f"(offline fallback from the {model.distribution} package)"
    )
    if pick:
        why = f"{why}; {pick}"
    return local_source(model.require_path(), name=model.name, embedded=True, explanation=why)


def resolve_model(
    reference: str | os.PathLike[str] | ModelSource | None = None, *, purpose: Purpose = "chat"
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
        return default_model(purpose)
    return resolve(reference)
