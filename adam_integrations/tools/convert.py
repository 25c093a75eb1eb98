"""``adam convert``: a transformers checkpoint as a GGUF file, or a model in Ollama's store;
a GGUF (the embedded model too) dequantized into a higher-precision GGUF or a
transformers checkpoint.

The checkpoint's writing is ``sharing.checkpoint_gguf``'s (the ``gguf`` package's writer
and tensor maps; what converts and what is refused is listed there); a GGUF's is llama.cpp's
quantizer (which dequantizes when asked for a higher type) or transformers' GGUF reader.
Here: which model a name means (a folder, a downloaded ``hf:`` repository, a catalog name,
a GGUF), where the result goes (a new file or folder, written under a temporary name and
moved into place; never over an existing one), or a model in Ollama's store (``name``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.atomic import replacing
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.extras import require_extra
from adam_integrations.core.types import ModelSource
from adam_integrations.sharing.checkpoint_gguf import (
    checkpoint_folder,
    resolved_file_type,
    write_gguf,
)
from adam_integrations.tools.quantize import (
    checked_new,
    gguf_on_disk,
    new_output,
    quantize,
    stem,
)


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
            to: str = "gguf", progress: bool = True) -> Converted:
    """Convert ``model`` to a GGUF of ``file_type`` (``f16``, ``bf16``, ``q8_0``, ``f32``,
    or ``auto``), written to ``output`` or, with ``name``, into Ollama's store as that
    model; neither: ``<model>-<type>.gguf`` in the working directory. Smaller types:
    ``quantize`` the result.

    ``model`` is a transformers checkpoint (a folder, an ``hf:`` repository in the local
    cache, or a catalog name of one; ``auto``: its 16-bit type, F16 for F32), or a GGUF
    (the embedded ``smollm2`` too), which is dequantized by llama.cpp's own quantizer
    into a higher-precision GGUF (``auto``: F16), or with ``to="transformers"`` into a
    transformers checkpoint folder (safetensors, tokenizer and chat template), so
    ``quantize``, ``importance_matrix``, ``evaluate`` and fine-tuning can start from it.

    >>> convert("smollm2", "q4_k_m")
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: ... smaller types are adam quantize's job
    """
    source = model if isinstance(model, ModelSource) else resolve_model(model)
    if output is not None and name is not None:
        raise InvalidRequestError("give an output file or an Ollama name, not both")
    if to not in ("gguf", "transformers"):
        raise InvalidRequestError(f"to={to!r}: convert writes a 'gguf' or a 'transformers' "
                                  "checkpoint", param="to")
    if source.is_gguf:
        return _from_gguf(source, file_type, output=output, name=name, to=to,
                          progress=progress)
    folder = checkpoint_folder(source)
    if to == "transformers":
        raise InvalidRequestError(f"{source.name} is a transformers checkpoint already "
                                  f"({folder})", param="to")
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


GGUF_TYPES = ("F16", "BF16", "F32", "Q8_0")
"""What a GGUF converts to (llama.cpp dequantizes it, then writes that type)."""
CHECKPOINT_TYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32"}


def _from_gguf(source: ModelSource, file_type: str, *, output: str | os.PathLike[str] | None,
               name: str | None, to: str, progress: bool) -> Converted:
    """A GGUF dequantized: into another GGUF (llama.cpp's quantizer, which dequantizes a
    quantized file when asked to write a type), or a transformers checkpoint."""
    path = gguf_on_disk(source, "convert")
    kind = "F16" if file_type.strip().lower() == "auto" else file_type.strip().upper()
    allowed = GGUF_TYPES if to == "gguf" else tuple(CHECKPOINT_TYPES)
    if kind not in allowed:
        raise InvalidRequestError(
            f"{file_type!r}: a GGUF converts to {', '.join(t.lower() for t in allowed)} "
            f"{'GGUF' if to == 'gguf' else 'weights'} (or auto: f16); smaller types are "
            "adam quantize's job", param="type")
    started = time.perf_counter()
    if to == "gguf":
        done = quantize(source, kind, output=output, name=name, allow_requantize=True,
                        progress=progress)
        return Converted(done.path, kind, path, done.output_bytes,
                         time.perf_counter() - started, name)
    if name is not None:
        raise InvalidRequestError("a transformers checkpoint is a folder, not an Ollama "
                                  "model: give an output folder (-o), not a name")
    target = Path(output) if output is not None else \
        Path.cwd() / f"{stem(source)}-{kind}-transformers"
    write_checkpoint(path, target, CHECKPOINT_TYPES[kind])
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    return Converted(target, kind, path, size, time.perf_counter() - started, name)


def write_checkpoint(gguf: Path, target: Path, dtype: str) -> None:
    """The GGUF ``gguf`` as a transformers checkpoint folder ``target`` (weights in
    ``dtype``, tokenizer, chat template): transformers' GGUF reader dequantizes it once
    into the conversion cache the transformers backend uses (``converted_gguf``), and
    that is copied out in ``dtype``. The folder is built beside ``target`` under a
    temporary name and renamed into place when whole; an existing ``target`` is never
    written into."""
    require_extra("transformers", "converting a GGUF to a transformers checkpoint")
    checked_new(target, "folder")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adam_integrations.backends.local.huggingface.gguf_conversion import converted_gguf

    converted, _ = converted_gguf(gguf)  # float32
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-",
                                    dir=target.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(converted, dtype=getattr(torch, dtype))
        model.save_pretrained(partial)
        AutoTokenizer.from_pretrained(converted).save_pretrained(partial)
        os.rename(partial, target)  # fails, keeping both, if target appeared meanwhile
    finally:
        shutil.rmtree(partial, ignore_errors=True)
