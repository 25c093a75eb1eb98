"""The GGUF conversion cache: a GGUF converted once to a transformers folder, kept on disk.

transformers dequantizes a GGUF on every load (tens of seconds for the 135M test model,
minutes for a real one), so the result is saved once in
``<cache>/gguf-conversions/<sha256 of the GGUF>-transformers-<version>/`` and later loads
read it from there. The transformers version is part of the name because a folder saved
by one major version may not load in another (transformers 5 writes tokenizer classes 4
does not know); an upgrade converts once more, and the old entry stays for the version
that wrote it. Entries are written whole or not at all (``core.stores.cache_entry``); one that
no longer loads (damaged on disk) is converted again and replaced (``replace=True``).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from adam_integrations.core.errors import ModelLoadError
from adam_integrations.core.paths import cache_root, producer_key
from adam_integrations.core.stores.cache_entry import is_complete, writing_entry
from adam_integrations.core.stores.gguf_header import read_gguf_header
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
    if not replace and is_complete(target, CONVERSION_MARKER):
        return target, True
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.warning("converting %s from GGUF once (transformers dequantizes it); "
                   "later loads use %s", gguf_path.name, target)
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
    about = {"gguf": str(gguf_path), "sha256": digest,
             "producer": producer_key("transformers", "tokenizers", "torch")}
    with writing_entry(target, CONVERSION_MARKER, about, replace=replace) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return target, False


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
