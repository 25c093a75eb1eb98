"""``adam convert``: a transformers checkpoint as a GGUF file, or a model in Ollama's store.

The writing is ``sharing.checkpoint_gguf``'s (the ``gguf`` package's writer and tensor
maps; what converts and what is refused is listed there). Here: which checkpoint a name
means (a folder, a downloaded ``hf:`` repository, a catalog name of one), where the GGUF
goes (a new file, written under a temporary name and moved into place; never over an
existing one), or a model in Ollama's store (``name``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.atomic import replacing
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.types import ModelSource
from adam_integrations.sharing.checkpoint_gguf import (
    checkpoint_folder,
    resolved_file_type,
    write_gguf,
)
from adam_integrations.tools.quantize import new_output


@dataclass(frozen=True)
class Converted:
    """What ``convert`` wrote."""

    path: Path
    file_type: str
    source: Path
    output_bytes: int
    seconds: float
    ollama_name: str | None = None


def convert(model: str | os.PathLike[str] | ModelSource, file_type: str = "auto", *,
            output: str | os.PathLike[str] | None = None, name: str | None = None,
            progress: bool = True) -> Converted:
    """Convert the transformers checkpoint ``model`` (a folder, an ``hf:`` repository in the
    local cache, or a catalog name of one) to a GGUF of ``file_type`` (``f16``, ``bf16``,
    ``q8_0``, ``f32``, or ``auto``: the checkpoint's 16-bit type, F16 for F32), written to
    ``output`` or, with ``name``, into Ollama's store as that model; neither:
    ``<model>-<type>.gguf`` in the working directory. Smaller types: ``quantize`` the
    result.

    >>> convert("smollm2", "f16")
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: ... is a GGUF already ...
    """
    source = model if isinstance(model, ModelSource) else resolve_model(model)
    folder = checkpoint_folder(source)
    if output is not None and name is not None:
        raise InvalidRequestError("give an output file or an Ollama name, not both")
    file_type = resolved_file_type(file_type, folder)
    started = time.perf_counter()

    def write(target: Path) -> None:
        write_gguf(folder, target, file_type, progress=progress, name=source.name)

    if name is not None:
        from adam_integrations.sharing.ollama_create import blob_written_by, create_model

        target = create_model(name, blob_written_by(write)).blob
    else:
        target = new_output(output, source, file_type)
        with replacing(target) as partial:
            write(partial)
    return Converted(target, file_type, folder, target.stat().st_size,
                     time.perf_counter() - started, name)

