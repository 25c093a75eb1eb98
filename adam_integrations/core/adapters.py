"""LoRA adapters applied to a model without merging them: what ``adapters=`` takes on the
in-process backends, ``ModelManager`` and the framework classes.

An adapter is a PEFT adapter folder (what ``adam tune`` writes, or PEFT's
``save_pretrained``), an ``hf:org/repo`` of one in the local Hugging Face cache, or a
GGUF LoRA adapter file (llama.cpp's ``convert_lora_to_gguf.py``, Ollama's ``ADAPTER``);
each with a ``scale`` (1.0: as trained). The transformers backend loads PEFT folders
with PEFT; the llama.cpp backend converts a PEFT folder to a GGUF adapter once
(``sharing.adapter_gguf``) and applies it to any quantization of the base.

Example:
    >>> [(a.name, a.scale) for a in coerce_adapters(["./mine", ("./other.gguf", 0.5)])]
    [('mine', 1.0), ('other.gguf', 0.5)]
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adam_integrations.core.errors import InvalidRequestError


@dataclass(frozen=True)
class Adapter:
    """One LoRA adapter and the scale it is applied at."""

    path: Path
    scale: float = 1.0

    @property
    def name(self) -> str:
        return self.path.name


AdapterLike = str | os.PathLike | Adapter | tuple | Mapping
"""An adapter as given: a path, an ``Adapter``, ``(path, scale)`` or
``{"path": ..., "scale": ...}``."""


def coerce_adapters(adapters: Sequence[AdapterLike] | AdapterLike | None, *,
                    must_exist: bool = False) -> tuple[Adapter, ...]:
    """``adapters`` as ``Adapter`` values (an ``hf:`` reference resolved to its folder in
    the local cache), each checked (and, with ``must_exist``, found on disk); a single
    adapter may be given without a list."""
    if adapters is None:
        return ()
    if isinstance(adapters, (str, os.PathLike, Adapter, Mapping)) or (
            isinstance(adapters, tuple) and len(adapters) == 2
            and isinstance(adapters[1], (int, float)) and not isinstance(adapters[1], bool)):
        adapters = [adapters]
    if not isinstance(adapters, Sequence):
        raise InvalidRequestError(f"adapters must be a list of adapter paths, got "
                                  f"{type(adapters).__name__}", param="adapters")
    found = tuple(_adapter(item) for item in adapters)
    for adapter in found if must_exist else ():
        if not adapter.path.exists():
            raise InvalidRequestError(f"no adapter at {adapter.path}: give a PEFT adapter "
                                      "folder (adam tune writes one) or a GGUF LoRA file",
                                      param="adapters")
    return found


def _adapter(item: Any) -> Adapter:
    if isinstance(item, Adapter):
        path, scale = item.path, item.scale
    elif isinstance(item, Mapping):
        path, scale = item.get("path"), item.get("scale", 1.0)
    elif isinstance(item, tuple) and len(item) == 2:
        path, scale = item
    else:
        path, scale = item, 1.0
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise InvalidRequestError(f"an adapter is a path to a PEFT folder or a GGUF LoRA "
                                  f"file, got {path!r}", param="adapters")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or \
            not math.isfinite(scale):
        raise InvalidRequestError(f"an adapter's scale must be a number, got {scale!r}",
                                  param="adapters")
    return Adapter(_located(str(path)), float(scale))


def _located(reference: str) -> Path:
    """A path as given, or the local cache's folder of an ``hf:`` adapter repository."""
    if not reference.startswith("hf:"):
        return Path(reference).expanduser()
    from adam_integrations.core.stores.hub import cached_snapshot

    snapshot = cached_snapshot(reference[3:])
    if snapshot is None:
        raise InvalidRequestError(f"{reference} is not in the local Hugging Face cache; "
                                  f"`adam pull {reference}` downloads it", param="adapters")
    return snapshot


def chosen_adapters(lora: Sequence[tuple[int, float]] | None,
                    scales: Sequence[float]) -> tuple[tuple[int, float], ...]:
    """The adapters one request runs with, as ``(index, scale)`` pairs: ``lora``'s choice
    (``GenerationConfig.lora``, llama-server's per-request field), checked against the
    ``scales`` of the adapters loaded; else all of them at those scales. Adapters at scale
    0 are left out.

    Example:
        >>> chosen_adapters(None, [1.0, 0.5])
        ((0, 1.0), (1, 0.5))
        >>> chosen_adapters([(1, 2.0), (0, 0.0)], [1.0, 0.5])
        ((1, 2.0),)
    """
    if lora is None:
        return tuple((index, scale) for index, scale in enumerate(scales) if scale)
    for index, _ in lora:
        if index >= len(scales):
            raise InvalidRequestError(
                f"lora adapter {index} does not exist: this model has "
                + (f"{len(scales)} adapters (ids 0-{len(scales) - 1})"
                   if scales else "no adapters (load them with adapters=, or adam "
                   "serve --lora)"), param="lora")
    return tuple((index, scale) for index, scale in lora if scale)
