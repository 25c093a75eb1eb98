"""``adam prune``: a smaller model cut from a larger one by what calibration text shows
each part does, written as a valid checkpoint (config updated) that every other command
takes (``adam eval``, ``adam convert``, ``adam tune``, ``adam distill`` to recover).

- **Depth** (``drop_layers`` or ``layer_ratio``): each decoder block's importance is how
  much it changes its input, ``1 - cos(input, output)`` averaged over the calibration
  tokens (ShortGPT's block influence); the least important blocks go.
- **Width** (``mlp_ratio``): each MLP channel's importance is the mean magnitude of its
  activation (the input of ``down_proj``) over the calibration tokens (as NVIDIA's
  Minitron ranks neurons); the same share of the least important channels goes from
  every block, so ``intermediate_size`` stays one number.

``strategy="random"`` drops as many blocks chosen at random (``seed``), the baseline the
importance is measured against (benchmarks/tune.py). Every block's importance is
returned, and ``adam prune`` prints them, so a user sees why a block went.

Example:
    >>> prune("smollm2", "notes.txt")
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: say how much to prune: ...
"""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.extras import require_extra
from adam_integrations.core.types import ModelSource
from adam_integrations.tools.quantize import checked_new, stem
from adam_integrations.tools.tune import base_checkpoint

CALIBRATION_TOKENS = 8192
"""Calibration tokens read (at most): importances settle long before."""
CHUNK = 256


@dataclass(frozen=True)
class Pruned:
    """What ``prune`` wrote: the checkpoint, each original block's importance (in order),
    the blocks dropped, and the sizes before and after."""

    path: Path
    importance: tuple[float, ...]
    dropped: tuple[int, ...]
    parameters_before: int
    parameters_after: int
    intermediate_before: int
    intermediate_after: int
    seconds: float


def prune(model: str | os.PathLike[str] | ModelSource, calibration: str | os.PathLike[str],
          *, drop_layers: int | None = None, layer_ratio: float | None = None,
          mlp_ratio: float | None = None, output: str | os.PathLike[str] | None = None,
          strategy: Literal["importance", "random"] = "importance", seed: int = 0
          ) -> Pruned:
    """Prune ``model`` as measured on the text file ``calibration`` into ``output``
    (default ``<model>-pruned``): ``drop_layers`` blocks (or ``layer_ratio`` of them) and
    ``mlp_ratio`` of every block's MLP channels. Everything is checked before the model
    is loaded; nothing is written over an existing folder."""
    _check_amounts(drop_layers, layer_ratio, mlp_ratio, strategy)
    text = _calibration_text(calibration)
    source = model if isinstance(model, ModelSource) else resolve_model(model)
    target = checked_new(Path(output) if output is not None
                         else Path.cwd() / f"{stem(source)}-pruned", "folder")
    require_extra("tune", "adam prune")
    folder, _ = base_checkpoint(source)
    started = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adam_integrations.backends.local.huggingface.devices import without_loading_bar

    tokenizer = AutoTokenizer.from_pretrained(folder)
    with without_loading_bar():
        loaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    loaded.eval()
    blocks = _blocks(loaded, source.name)
    count = len(blocks)
    drop = drop_layers if drop_layers is not None else \
        round(count * layer_ratio) if layer_ratio is not None else 0
    if drop >= count:
        raise InvalidRequestError(f"{source.name} has {count} blocks; drop fewer than that",
                                  param="drop_layers")
    before = sum(p.numel() for p in loaded.parameters())
    intermediate = int(loaded.config.intermediate_size)
    importance, channels = _measure(loaded, tokenizer, text, blocks)
    if strategy == "random":
        dropped = sorted(random.Random(seed).sample(range(count), drop))
    else:
        dropped = sorted(sorted(range(count), key=lambda i: importance[i])[:drop])
    keep_channels = intermediate - round(intermediate * (mlp_ratio or 0.0))
    _drop_blocks(loaded, dropped)
    if keep_channels < intermediate:
        _narrow_mlps(loaded, [c for i, c in enumerate(channels) if i not in dropped],
                     keep_channels)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        loaded.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        os.rename(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return Pruned(target, tuple(importance), tuple(dropped), before,
                  sum(p.numel() for p in loaded.parameters()), intermediate, keep_channels,
                  time.perf_counter() - started)


def _check_amounts(drop_layers: int | None, layer_ratio: float | None,
                   mlp_ratio: float | None, strategy: str) -> None:
    if drop_layers is None and layer_ratio is None and mlp_ratio is None:
        raise InvalidRequestError("say how much to prune: drop_layers (--drop-layers N), "
                                  "layer_ratio (--layer-ratio R) and/or mlp_ratio "
                                  "(--mlp-ratio R)")
    if drop_layers is not None and layer_ratio is not None:
        raise InvalidRequestError("give drop_layers or layer_ratio, not both")
    if drop_layers is not None and (isinstance(drop_layers, bool) or
                                    not isinstance(drop_layers, int) or drop_layers < 1):
        raise InvalidRequestError(f"drop_layers must be a whole number of at least 1, got "
                                  f"{drop_layers!r}", param="drop_layers")
    for name, value in (("layer_ratio", layer_ratio), ("mlp_ratio", mlp_ratio)):
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, float)) or not math.isfinite(value) or not 0 < value < 1):
            raise InvalidRequestError(f"{name} must be a share between 0 and 1 (0.25: a "
                                      f"quarter), got {value!r}", param=name)
    if strategy not in ("importance", "random"):
        raise InvalidRequestError(f"strategy must be importance or random, got "
                                  f"{strategy!r}", param="strategy")


def _calibration_text(path: str | os.PathLike[str]) -> str:
    from adam_integrations.tools.tune_data import read_training_data

    data = read_training_data(path)
    if data.kind != "text":
        raise InvalidRequestError(f"{path}: calibration is plain text (a .txt or .md file, "
                                  "or {\"text\"} JSONL)")
    return "\n\n".join(str(example.text) for example in data.examples)


def _blocks(model: Any, name: str) -> Any:
    blocks = getattr(getattr(model, "model", None), "layers", None)
    if blocks is None or not len(blocks) or not all(
            hasattr(block, "mlp") and hasattr(block.mlp, "down_proj") for block in blocks):
        raise InvalidRequestError(f"{name} is not a decoder of blocks with gated MLPs "
                                  "(Llama, Qwen, SmolLM2...); prune takes those")
    return blocks


def _measure(model: Any, tokenizer: Any, text: str, blocks: Any
             ) -> tuple[list[float], list[Any]]:
    """Each block's influence and each block's MLP channel magnitudes, over the text."""
    import torch

    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:CALIBRATION_TOKENS]
    if len(ids) < 16:
        raise InvalidRequestError("the calibration text is too short to measure anything: "
                                  "give a few paragraphs at least")
    influence = [0.0] * len(blocks)
    magnitude = [torch.zeros(block.mlp.down_proj.in_features) for block in blocks]
    counted = [0]
    hooks = []

    def block_hook(index: int) -> Any:
        def hook(module: Any, args: Any, kwargs: Any, output: Any) -> None:
            inputs = args[0] if args else kwargs["hidden_states"]
            outputs = output[0] if isinstance(output, tuple) else output
            cos = torch.nn.functional.cosine_similarity(inputs.float(), outputs.float(),
                                                        dim=-1)
            influence[index] += float((1 - cos).sum())
        return hook

    def channel_hook(index: int) -> Any:
        def hook(module: Any, args: Any) -> None:
            magnitude[index] += args[0].float().abs().sum(dim=(0, 1))
        return hook

    for index, block in enumerate(blocks):
        hooks.append(block.register_forward_hook(block_hook(index), with_kwargs=True))
        hooks.append(block.mlp.down_proj.register_forward_pre_hook(channel_hook(index)))
    try:
        with torch.no_grad():
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start:start + CHUNK]
                model(input_ids=torch.tensor([chunk]))
                counted[0] += len(chunk)
    finally:
        for hook in hooks:
            hook.remove()
    return [value / counted[0] for value in influence], [m / counted[0] for m in magnitude]


def _drop_blocks(model: Any, dropped: list[int]) -> None:
    """Remove ``dropped`` blocks; renumber the rest (their KV-cache slots) and the config's
    per-layer lists."""
    import torch

    blocks = model.model.layers
    kept = [block for index, block in enumerate(blocks) if index not in dropped]
    model.model.layers = torch.nn.ModuleList(kept)
    for index, block in enumerate(kept):
        attention = getattr(block, "self_attn", None)
        if attention is not None and hasattr(attention, "layer_idx"):
            attention.layer_idx = index
    config = model.config
    for name in ("layer_types", "mlp_only_layers"):
        value = getattr(config, name, None)
        if isinstance(value, list) and len(value) == len(blocks):
            setattr(config, name, [v for i, v in enumerate(value) if i not in dropped])
    config.num_hidden_layers = len(kept)


def _narrow_mlps(model: Any, magnitudes: list[Any], keep: int) -> None:
    """Keep each block's ``keep`` strongest MLP channels (gate and up rows, down
    columns)."""
    import torch

    for block, magnitude in zip(model.model.layers, magnitudes, strict=True):
        channels = torch.topk(magnitude, keep).indices.sort().values
        mlp = block.mlp
        for name in ("gate_proj", "up_proj"):
            setattr(mlp, name, _rows(getattr(mlp, name), channels))
        down = mlp.down_proj
        narrowed = torch.nn.Linear(keep, down.out_features, bias=down.bias is not None)
        narrowed.weight.data = down.weight.data[:, channels].clone()
        if down.bias is not None:
            narrowed.bias.data = down.bias.data.clone()
        mlp.down_proj = narrowed
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = keep
    model.config.intermediate_size = keep


def _rows(linear: Any, rows: Any) -> Any:
    import torch

    narrowed = torch.nn.Linear(linear.in_features, len(rows), bias=linear.bias is not None)
    narrowed.weight.data = linear.weight.data[rows].clone()
    if linear.bias is not None:
        narrowed.bias.data = linear.bias.data[rows].clone()
    return narrowed
