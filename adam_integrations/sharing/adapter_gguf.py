"""LoRA adapters across backends: a PEFT adapter folder (``adam tune``'s, or any
``adapter_config.json`` + ``adapter_model.safetensors``) written as the GGUF LoRA adapter
llama.cpp loads (``llama_adapter_lora_init``, llama-server's ``--lora``, Ollama's
``ADAPTER``), and either form checked against the base it is applied to.

The GGUF is what llama.cpp's ``convert_lora_to_gguf.py`` writes: ``general.type =
adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``, the base's architecture, and
for each adapted weight two tensors named after it, ``<weight>.lora_a`` (rank x inputs)
and ``<weight>.lora_b`` (outputs x rank), in float32. As in ``checkpoint_gguf``, a
``llama`` model's query and key rows are reordered to llama.cpp's interleaved RoPE layout,
so ``lora_b`` of those projections is too (``lora_a`` acts on inputs, which keep their
order). rsLoRA's scale (alpha / sqrt(rank)) is written as the alpha that gives it.

Refused, saying so: DoRA, per-module alphas, adapted biases, embeddings or output layer
(llama.cpp applies none of them from a PEFT conversion here), architectures other than
``checkpoint_gguf.ARCHITECTURES``, and an adapter whose shapes are not the base's (made
for another model): both are named.

``adapter_for_gguf`` converts a PEFT folder once per content and base architecture into
``<cache>/lora-ggufs/`` and returns a GGUF adapter as it is, after checking it fits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adam_integrations.core.atomic import replacing
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.paths import cache_root, producer_key
from adam_integrations.core.stores.gguf_header import GGUFHeader, is_gguf, read_gguf_header
from adam_integrations.sharing.checkpoint_gguf import ARCHITECTURES, interleave_rope_rows
from adam_integrations.sharing.digest import file_sha256

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
GGUF_ARCHITECTURE = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3",
                     "qwen3_moe": "qwen3moe"}
"""config.json ``model_type`` -> the GGUF's ``general.architecture``."""


@dataclass(frozen=True)
class PeftAdapter:
    """A PEFT LoRA adapter folder, read and checked: its config, the base it names, and
    each adapted weight's ``(lora_A, lora_B)`` keys by module (``model.layers.0.
    self_attn.q_proj``)."""

    folder: Path
    config: dict[str, Any]
    modules: dict[str, tuple[str, str]]

    @property
    def rank(self) -> int:
        return int(self.config.get("r", 8))

    @property
    def alpha(self) -> float:
        """The alpha that gives llama.cpp's scale (alpha / rank) PEFT's own scale."""
        alpha = float(self.config.get("lora_alpha", 8))
        return alpha * math.sqrt(self.rank) if self.config.get("use_rslora") else alpha

    @property
    def base(self) -> str | None:
        return self.config.get("base_model_name_or_path")


def is_peft_adapter(path: Path) -> bool:
    return path.is_dir() and (path / ADAPTER_CONFIG).is_file()


def read_peft_adapter(folder: Path) -> PeftAdapter:
    """The adapter in ``folder``, refused (saying why) when it is not a LoRA adapter this
    converts."""
    from safetensors import safe_open

    if not is_peft_adapter(folder) or not (folder / ADAPTER_WEIGHTS).is_file():
        raise InvalidRequestError(
            f"{folder} is not a PEFT adapter folder ({ADAPTER_CONFIG} and "
            f"{ADAPTER_WEIGHTS}); give one (adam tune writes them) or a GGUF LoRA adapter")
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidRequestError(f"{folder / ADAPTER_CONFIG} cannot be read: {error}") \
            from None
    kind = config.get("peft_type", "LORA")
    if kind != "LORA":
        raise InvalidRequestError(f"{folder.name} is a {kind} adapter; only LoRA adapters "
                                  "are served")
    for key, why in (("use_dora", "DoRA adapters"), ("alpha_pattern", "per-module alphas"),
                     ("modules_to_save", "fully trained extra modules")):
        if config.get(key):
            raise InvalidRequestError(f"{folder.name} uses {why} ({key}), which llama.cpp's "
                                      "adapters cannot hold; merge it (adam merge) instead")
    if config.get("bias", "none") != "none":
        raise InvalidRequestError(f"{folder.name} trains biases (bias={config['bias']!r}); "
                                  "llama.cpp's adapters hold weights only: merge it instead")
    modules: dict[str, list[str]] = {}
    with safe_open(str(folder / ADAPTER_WEIGHTS), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (not a dict)
            if ".lora_A." not in key and ".lora_B." not in key:
                raise InvalidRequestError(f"{folder.name} holds {key}, which is not a LoRA "
                                          "weight; merge it (adam merge) instead")
            module = key.split(".lora_")[0].removeprefix("base_model.model.")
            modules.setdefault(module, ["", ""])[0 if ".lora_A." in key else 1] = key
    missing = [m for m, (a, b) in modules.items() if not (a and b)]
    if missing or not modules:
        raise InvalidRequestError(f"{folder.name} has no whole LoRA pair for "
                                  f"{', '.join(missing) or 'any module'}")
    bad = [m for m in modules if m.split(".")[-1] in ("embed_tokens", "lm_head")]
    if bad:
        raise InvalidRequestError(f"{folder.name} adapts {bad[0]}; adapters on embeddings or "
                                  "the output layer are not served: merge it instead")
    return PeftAdapter(folder, config, {m: (a, b) for m, (a, b) in modules.items()})


def write_adapter_gguf(adapter: PeftAdapter, base: GGUFHeader, target: Path) -> None:
    """``adapter`` written to ``target`` as a GGUF LoRA adapter for the model ``base``
    (its architecture, and the shapes each adapted weight must have), in place: callers
    write a temporary name and move it (``adapter_for_gguf``)."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    architecture = _architecture(base)
    layers = int(base.field("block_count") or 0)
    heads = int(base.field("attention.head_count") or 0)
    kv_heads = int(base.field("attention.head_count_kv") or heads)
    names = gguf.get_tensor_name_map(architecture, layers)
    writer = gguf.GGUFWriter(str(target), gguf.MODEL_ARCH_NAMES[architecture])
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, adapter.alpha)
    writer.add_name(adapter.folder.name)
    with safe_open(str(adapter.folder / ADAPTER_WEIGHTS), framework="pt") as handle:
        for module, (key_a, key_b) in sorted(adapter.modules.items(), key=_module_order):
            mapped = names.get_name(f"{module}.weight", try_suffixes=(".weight",))
            if mapped is None:
                raise InvalidRequestError(f"{adapter.folder.name}: no llama.cpp weight for "
                                          f"{module} in a {base.architecture} model")
            lora_a = handle.get_tensor(key_a).float().numpy()
            lora_b = handle.get_tensor(key_b).float().numpy()
            _check_shapes(adapter, base, mapped, lora_a.shape, lora_b.shape)
            if architecture == gguf.MODEL_ARCH.LLAMA and module.endswith(("q_proj", "k_proj")):
                lora_b = interleave_rope_rows(
                    lora_b, heads if module.endswith("q_proj") else kv_heads)
            writer.add_tensor(f"{mapped}.lora_a", np.ascontiguousarray(lora_a))
            writer.add_tensor(f"{mapped}.lora_b", np.ascontiguousarray(lora_b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def adapter_for_gguf(path: str | Path, base: GGUFHeader, base_path: Path | str) -> Path:
    """The GGUF LoRA adapter to give llama.cpp for ``path`` (a GGUF adapter, or a PEFT
    folder converted once into the cache) on the model ``base``, checked to fit it;
    refused, naming both, when it was made for another model."""
    path = Path(path).expanduser()
    if is_gguf(path) and path.is_file():
        check_gguf_adapter(path, base, base_path)
        return path
    if not path.exists():
        raise InvalidRequestError(f"no adapter at {path}: give a PEFT adapter folder or a "
                                  "GGUF LoRA adapter file")
    adapter = read_peft_adapter(path)
    digest = hashlib.sha256()
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        digest.update(f"{name}:{file_sha256(path / name)}\n".encode())
    digest.update(f"{base.architecture}:{base.field('attention.head_count')}:"
                  f"{base.field('attention.head_count_kv')}".encode())
    root = cache_root() / "lora-ggufs"
    target = root / f"{digest.hexdigest()[:32]}-{producer_key('gguf')}.gguf"
    if target.is_file():
        check_gguf_adapter(target, base, base_path, shown=path)
        return target
    root.mkdir(parents=True, exist_ok=True)
    logger.info("converting the adapter %s to GGUF once, into %s", path, target)
    with replacing(target) as partial:
        _write_checked(adapter, base, base_path, partial)
    return target


def _write_checked(adapter: PeftAdapter, base: GGUFHeader, base_path: Path | str,
                   target: Path) -> None:
    try:
        write_adapter_gguf(adapter, base, target)
    except _ShapeMismatch as mismatch:
        raise InvalidRequestError(
            f"the adapter {adapter.folder} was made for another model than {base_path}: "
            f"{mismatch} (it names {adapter.base or 'no base'} as its base)") from None


def check_gguf_adapter(path: Path, base: GGUFHeader, base_path: Path | str, *,
                       shown: Path | None = None) -> None:
    """Refuse a GGUF LoRA adapter that llama.cpp would refuse on ``base``: not an
    adapter, another architecture, or weights of other shapes; naming both files."""
    header = read_gguf_header(path)
    shown = shown or path
    if header.metadata.get("general.type") != "adapter" or \
            header.metadata.get("adapter.type") != "lora":
        raise InvalidRequestError(f"{shown} is a GGUF model, not a LoRA adapter "
                                  "(general.type is not adapter)")
    if header.architecture != base.architecture:
        raise InvalidRequestError(
            f"the adapter {shown} is for a {header.architecture} model, and {base_path} is "
            f"{base.architecture}: it was made for another model")
    for name, shape in header.tensor_shapes.items():
        weight = name.removesuffix(".lora_a").removesuffix(".lora_b")
        expected = base.tensor_shapes.get(weight)
        index = 0 if name.endswith(".lora_a") else 1
        if expected is None or len(expected) != 2 or shape[index] != expected[index]:
            raise InvalidRequestError(
                f"the adapter {shown} was made for another model than {base_path}: its "
                f"{name} has shape {shape}, and {base_path} "
                + (f"has no {weight}" if expected is None else f"has {weight} of {expected}"))


class _ShapeMismatch(Exception):
    pass


def _check_shapes(adapter: PeftAdapter, base: GGUFHeader, weight: str,
                  shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> None:
    expected = base.tensor_shapes.get(weight)  # ggml order: (inputs, outputs)
    if expected is None:
        raise _ShapeMismatch(f"the base has no {weight}")
    if tuple(expected) != (shape_a[1], shape_b[0]) or shape_a[0] != shape_b[1]:
        raise _ShapeMismatch(f"{weight} is {expected[1]} x {expected[0]} in the base and "
                             f"{shape_b[0]} x {shape_a[1]} in the adapter")


def _architecture(base: GGUFHeader) -> Any:
    import gguf

    by_name = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    architecture = by_name.get(base.architecture or "")
    if architecture is None or base.architecture not in GGUF_ARCHITECTURE.values():
        raise InvalidRequestError(
            f"adapters are converted for {', '.join(ARCHITECTURES)} models; this one is "
            f"{base.architecture} (llama.cpp's convert_lora_to_gguf.py covers more)")
    return architecture


def _module_order(item: tuple[str, tuple[str, str]]) -> tuple[int, str]:
    parts = item[0].split(".")
    layer = next((int(p) for p in parts if p.isdigit()), -1)
    return layer, item[0]
