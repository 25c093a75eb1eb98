"""The catalog's short names for the resolver: the embedded models and the Qwen3 aliases.

``core.resolver`` knows the reference grammar and the local stores but no model list;
``resolve_reference`` passes it the catalog's names (and any a third party registered
with ``register_model_names``), so ``resolve_reference("qwen3_small")`` and
``resolve_reference("smollm2")`` work wherever it is called, whatever was imported first.
"""

from __future__ import annotations

import contextlib
import os

from adam_integrations.catalog.embedded import EMBEDDED_MODELS, find_embedded
from adam_integrations.catalog.qwen3 import ALL_QWEN3, find_qwen3
from adam_integrations.core.errors import AdamError, ModelNotFoundError
from adam_integrations.core.registry import did_you_mean
from adam_integrations.core.resolver import (
    NameLookup,
    hub_source,
    local_source,
    ollama_blob,
    resolve,
)
from adam_integrations.core.stores.hub import cached_snapshot
from adam_integrations.core.stores.ollama_store import list_store_models
from adam_integrations.core.types import ModelSource

_registered: list[NameLookup] = []


def catalog_source(name: str) -> ModelSource | None:
    """The source of an embedded model's name or a Qwen3 catalog name (alias, HF id,
    Ollama tag), or None when the catalog has no such name.

    A Qwen3 model not in the Hugging Face cache but in Ollama's store resolves to its
    GGUF blob there, used in place; otherwise to its hub repository.
    """
    embedded = find_embedded(name)
    if embedded is not None:
        return local_source(embedded.require_path(), name=embedded.name, embedded=True,
                            explanation=f"embedded model {embedded.description}")
    qwen3 = find_qwen3(name)
    if qwen3 is None:
        return None
    if cached_snapshot(qwen3.hf_id) is None and qwen3.ollama_tag is not None:
        blob = ollama_blob(qwen3.ollama_tag)
        if blob is not None:
            return ModelSource(
                "gguf", str(blob), qwen3.ollama_tag,
                f"catalog alias {qwen3.alias} = {qwen3.hf_id}, on this machine only in "
                f"Ollama's store as {qwen3.ollama_tag}: its GGUF blob used in place",
                ollama_name=qwen3.ollama_tag)
    return hub_source(qwen3.hf_id, f"catalog alias {qwen3.alias} = {qwen3.hf_id}")


def register_model_names(lookup: NameLookup) -> None:
    """Let ``resolve_reference`` know more short names (tried after the catalog's; a
    plugin or a test suite's scripted models; registering twice is a no-op)."""
    if lookup not in _registered:
        _registered.append(lookup)


def resolve_reference(
    reference: str | os.PathLike[str], *, local_paths: bool = True
) -> ModelSource:
    """``core.resolver.resolve`` with the catalog's names (then the registered ones).

    Example:
        >>> resolve_reference("qwen3_small").kind
        'hub'
    """
    try:
        return resolve(reference, names=(catalog_source, *_registered, store_source),
                       local_paths=local_paths)
    except ModelNotFoundError as error:
        text = os.fspath(reference).strip() if isinstance(reference, (str, os.PathLike)) \
            else ""
        hint = did_you_mean([text.lower()], known_names()) if text else ""
        if hint and "did you mean" not in str(error):
            first, dot, rest = error.args[0].partition(". ")
            error.args = (f"{first}{hint}{dot}{rest}", *error.args[1:])
        raise


def store_source(name: str) -> ModelSource | None:
    """A bare name of a model in a local Ollama store (``pirate`` for ``pirate:latest``,
    as ``adam create pirate`` or ``ollama pull`` made it), as Ollama resolves it; None
    when no store holds it (or it is not an Ollama name)."""
    try:
        found = ollama_blob(name)
    except AdamError:  # not an Ollama name, or a manifest that cannot be read
        return None
    return None if found is None else resolve(f"ollama:{name}")


def known_names() -> set[str]:
    """The short names ``resolve_reference`` knows: the embedded models', the Qwen3
    catalog's aliases and Ollama tags, and the local Ollama stores' models (for "did you
    mean")."""
    names = {alias for model in EMBEDDED_MODELS for alias in model.aliases}
    for model in ALL_QWEN3:
        names.update(n for n in (model.alias, model.ollama_tag) if n)
    with contextlib.suppress(AdamError, OSError):  # an unreadable store suggests nothing
        names.update(list_store_models())
    return names
