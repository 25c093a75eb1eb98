"""The GGUF conversion cache: a GGUF converted once to a transformers folder, kept on disk.

transformers dequantizes a GGUF on every load (tens of seconds for the 135M test model,
minutes for a real one), so the result is saved once in
``<cache>/gguf-conversions/<sha256 of the GGUF>-transformers-<version>/`` and later loads
read it from there. The transformers version is part of the name because a folder saved
by one major version may not load in another (transformers 5 writes tokenizer classes 4
does not know); an upgrade converts once more, and the old entry stays for the version
that wrote it. The folder is written under a temporary name and renamed into place, with
``adam-conversion.json`` last, so a half-written conversion is never used; two processes
converting the same file at once both end with the same folder. An entry that no longer
loads (damaged on disk) is converted again and replaced (``replace=True``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from adam_integrations.core.errors import ModelLoadError
from adam_integrations.core.gguf_header import read_gguf_header
from adam_integrations.core.paths import cache_root, producer_key
from adam_integrations.sharing.digest import file_sha256

logger = logging.getLogger(__name__)

CONVERSION_MARKER = "adam-conversion.json"


def converted_gguf(gguf_path: Path, root: Path | None = None, *,
                   replace: bool = False) -> tuple[Path, bool]:
    """The transformers folder converted from ``gguf_path`` (converting on first use, or
    again with ``replace``), and whether it came from the cache."""
    check_transformers_can_read(gguf_path)
    digest = file_sha256(gguf_path)
    root = root or cache_root() / "gguf-conversions"
    target = root / f"{digest}-{producer_key('transformers')}"
    if not replace and (target / CONVERSION_MARKER).exists():
        return target, True
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.warning("converting %s from GGUF once (transformers dequantizes it); "
                   "later loads use %s", gguf_path.name, target)
    root.mkdir(parents=True, exist_ok=True)
    try:
        import torch

        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ModelLoadError(
            f"transformers cannot load the GGUF file {gguf_path}: {error}. "
            "transformers dequantizes only some architectures; a newer transformers "
            "may support this one."
        ) from error
    # The tensors are already dequantized; the GGUF "quantizer" transformers attaches
    # only blocks save_pretrained.
    model.hf_quantizer = None
    with contextlib.suppress(AttributeError):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{digest[:16]}-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / CONVERSION_MARKER).write_text(json.dumps({
            "gguf": str(gguf_path), "sha256": digest, "converted_at": time.time(),
            "producer": producer_key("transformers", "tokenizers", "torch"),
        }))
        if replace:
            _discard(target)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished the same conversion first
            if not (target / CONVERSION_MARKER).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, False


def _discard(folder: Path) -> None:
    """Move a cache entry out of the way (one rename, so readers never see it half
    deleted), then delete it."""
    if not folder.exists():
        return
    trash = folder.with_name(f".{folder.name}-discarded-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.replace(folder, trash)
    except OSError:
        return  # another process replaced it first
    shutil.rmtree(trash, ignore_errors=True)


def check_transformers_can_read(gguf_path: Path) -> None:
    """Refuse, with the reason, a GGUF that transformers cannot dequantize."""
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    header = read_gguf_header(gguf_path)
    architecture = header.architecture or "unknown"
    if architecture not in GGUF_CONFIG_MAPPING:
        import transformers

        supported = ", ".join(sorted(set(GGUF_CONFIG_MAPPING) - {"general", "tokenizer"}))
        raise ModelLoadError(
            f"{gguf_path.name} is a GGUF of architecture {architecture!r}, which transformers "
            f"{transformers.__version__} cannot load (it reads: {supported}). Use the "
            "model's safetensors repository with this backend instead."
        )
