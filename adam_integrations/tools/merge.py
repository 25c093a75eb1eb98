"""``adam merge``: a LoRA adapter merged into its base's weights, for engines that take no
adapters: a transformers checkpoint (safetensors, tokenizer, chat template) that
``adam convert`` and ``adam quantize`` take, or, with ``name``, converted to a GGUF and put
into Ollama's store in one go.

The merge is PEFT's own (``merge_and_unload``); the base is resolved like any model
reference (a GGUF such as the embedded ``smollm2`` is merged on its dequantized
checkpoint, as ``adam tune`` trained on it). The adapter is checked against the base
first; the folder is written under a temporary name and renamed when whole, never over an
existing one.

Example:
    >>> merge("smollm2", "no-such-adapter")
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: no-such-adapter is not a PEFT ...
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.extras import require_extra
from adam_integrations.core.types import ModelSource
from adam_integrations.sharing.adapter_gguf import read_peft_adapter
from adam_integrations.tools.quantize import checked_new, stem
from adam_integrations.tools.tune import base_checkpoint


@dataclass(frozen=True)
class Merged:
    """What ``merge`` wrote: the merged checkpoint folder (None when only put into
    Ollama's store), and the Ollama model made of it."""

    path: Path | None
    base: Path
    adapter: Path
    seconds: float
    ollama_name: str | None = None


def merge(base: str | os.PathLike[str] | ModelSource, adapter: str | os.PathLike[str], *,
          output: str | os.PathLike[str] | None = None, name: str | None = None,
          progress: bool = True) -> Merged:
    """Merge the PEFT adapter ``adapter`` into ``base``, written to ``output`` (default
    ``<base>-merged`` in the working directory, unless only ``name`` is given), and with
    ``name`` converted to a GGUF (``adam convert``'s auto type) into Ollama's store."""
    peft = read_peft_adapter(Path(adapter).expanduser())
    source = base if isinstance(base, ModelSource) else resolve_model(base)
    target = None
    if output is not None or name is None:
        target = checked_new(Path(output) if output is not None
                             else Path.cwd() / f"{stem(source)}-merged", "folder")
    require_extra("tune", "adam merge")
    folder, _ = base_checkpoint(source)
    started = time.perf_counter()
    staging = Path(tempfile.mkdtemp(prefix=".merge-partial-",
                                    dir=(target.parent if target else None)))
    try:
        _write_merged(folder, peft.folder, staging, source.name)
        if name is not None:
            from adam_integrations.tools.convert import convert

            convert(str(staging), name=name, progress=progress)
        if target is not None:
            os.rename(staging, target)  # fails, keeping both, if target appeared meanwhile
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Merged(target, folder, peft.folder, time.perf_counter() - started, name)


def _write_merged(folder: Path, adapter: Path, target: Path, model_name: str) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adam_integrations.backends.local.huggingface.adapters import check_adapter_fits
    from adam_integrations.backends.local.huggingface.devices import without_loading_bar

    with without_loading_bar():
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    check_adapter_fits(model, read_peft_adapter(adapter), model_name)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(target)
    tokenizer_source = adapter if (adapter / "tokenizer_config.json").is_file() else folder
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(target)
    if not any(target.glob("*.safetensors")):
        raise InvalidRequestError(f"merging {adapter} wrote no weights")
