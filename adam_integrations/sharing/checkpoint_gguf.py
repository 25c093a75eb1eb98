"""A transformers checkpoint (safetensors) written as a GGUF, so llama.cpp and Ollama run it.

The writer is the ``gguf`` package's own (``GGUFWriter``, its tensor-name maps and
``SpecialVocab``), driven here for the architectures the catalog covers: ``llama``
(SmolLM2, Llama), ``qwen2``, ``qwen3`` and ``qwen3_moe``. Tensors are streamed: the file's
header is planned from the safetensors headers, then each tensor is read, converted and
written in turn, so a model needs about one tensor of memory beyond its file. What is
carried over:

- the hyperparameters llama.cpp reads for the architecture (context, sizes, heads, head
  dimension, RoPE base and YaRN/linear scaling, norm epsilon, experts);
- the tensors under llama.cpp's names; ``llama``'s query and key rows reordered from
  transformers' rotate-half layout to the interleaved one llama.cpp's ``llama`` RoPE uses
  (Qwen's models use the NEOX layout on both sides: no reordering); a tied output layer
  left out (llama.cpp reuses the embedding); per-expert MoE weights stacked per layer;
- the byte-level BPE tokenizer from ``tokenizer.json`` (tokens, merges; added special
  tokens as control tokens, other added tokens user-defined, padding ids up to the
  model's vocabulary size as unused), its pre-tokenizer named as llama.cpp names it, the
  special token ids, BOS/EOS insertion and the chat template (``SpecialVocab``).

Types: ``F16``, ``BF16``, ``Q8_0`` (gguf's own quantizer; a tensor whose rows do not
split into 32-value blocks stays F16) and ``F32``; ``auto`` keeps a 16-bit checkpoint's
type and writes F16 for an F32 one. One-dimensional tensors (norms, biases) and MoE
routers stay F32, as llama.cpp's converter keeps them.

Not converted (refused, saying so): other architectures, SentencePiece or WordPiece
tokenizers, pre-tokenizers llama.cpp does not know, Llama 3's frequency-scaled RoPE,
and the Qwen3.5 family (its linear-attention tensors need llama.cpp's own
``convert_hf_to_gguf.py``, which ``make qwen3-parts`` keeps from the pinned sdist).

``converted_checkpoint`` keeps one conversion per checkpoint content in the cache (for
``ModelManager(..., share_with_ollama=True)`` on a safetensors model).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adam_integrations.core.atomic import replacing
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.extras import require_extra
from adam_integrations.core.paths import cache_root, producer_key
from adam_integrations.core.stores.hub import cached_snapshot
from adam_integrations.core.types import ModelSource
from adam_integrations.sharing.digest import file_sha256

logger = logging.getLogger(__name__)

FILE_TYPES = ("F16", "BF16", "Q8_0", "F32")
"""The types ``write_gguf`` writes (besides ``auto``)."""

ARCHITECTURES = {"llama": "LLAMA", "qwen2": "QWEN2", "qwen3": "QWEN3",
                 "qwen3_moe": "QWEN3MOE"}
"""config.json ``model_type`` -> gguf's ``MODEL_ARCH`` member."""

# tokenizer.json Split patterns -> llama.cpp's pre-tokenizer names; llama.cpp quotes the
# original patterns beside its own (src/llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_QWEN2 and
# _LLAMA3, in the llama-cpp-python 0.3.36 sdist).
_SPLIT_PATTERNS = {
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+": "qwen2",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
    r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "llama-bpe",
}
_QWEN35 = ("qwen3_5", "qwen3_5_moe", "qwen3_5_text", "qwen3_5_moe_text", "qwen3_next")


@dataclass(frozen=True)
class _Planned:
    """One GGUF tensor: its name, shape (numpy order), type, and how to read it."""

    name: str
    shape: tuple[int, ...]
    kind: str  # a GGMLQuantizationType name
    read: Callable[[], Any]  # -> float32 numpy array of ``shape``


def checkpoint_config(folder: Path) -> dict[str, Any]:
    """The checkpoint's config.json, refused (saying what converts) when ``folder`` is not
    a transformers checkpoint of an architecture this writes."""
    config_file = folder / "config.json"
    if not config_file.is_file() or not list(folder.glob("*.safetensors")):
        raise InvalidRequestError(
            f"{folder} is not a transformers checkpoint (config.json and .safetensors "
            "files): convert reads a model folder, a downloaded hf: repository or a "
            "catalog name of one")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config = {**config.get("text_config", {}), **config}
    model_type = config.get("model_type", "")
    if model_type in _QWEN35:
        raise InvalidRequestError(
            f"{folder.name} is a {model_type} model: its linear-attention layers are not "
            "converted here; use llama.cpp's convert_hf_to_gguf.py (in llama-cpp-python's "
            "sdist) or the model's published GGUF")
    if model_type not in ARCHITECTURES:
        raise InvalidRequestError(
            f"{folder.name} is a {model_type or 'unknown'} model; convert writes "
            f"{', '.join(ARCHITECTURES)} checkpoints (llama.cpp's convert_hf_to_gguf.py "
            "covers more)")
    return config


def checkpoint_folder(source: ModelSource) -> Path:
    """The folder of the transformers checkpoint ``source`` names, refused (saying what to
    do) when it is a GGUF or not on this machine."""
    if source.kind == "folder":
        return Path(source.location)
    if source.kind == "hub" and not source.gguf_repo:
        snapshot = cached_snapshot(source.location)
        if snapshot is None:
            raise InvalidRequestError(
                f"{source.location} is not downloaded; `adam pull hf:{source.location}` "
                "gets it (convert works on files on this machine)")
        return snapshot
    if source.is_gguf:
        raise InvalidRequestError(
            f"{source.name} is a GGUF already ({source.explanation}); `adam quantize` "
            "makes smaller types of it")
    raise InvalidRequestError(
        f"{source.name} ({source.kind}) is not a transformers checkpoint on this machine: "
        "give a checkpoint folder, or an hf: repository in the local cache")


def write_gguf(folder: Path, target: Path, file_type: str = "auto", *,
               progress: bool = False, name: str | None = None) -> str:
    """Write the checkpoint in ``folder`` to ``target`` as a GGUF of ``file_type``; the
    type written (``auto`` resolved). ``target`` is written in place: callers write to a
    temporary name and move it (``convert``, ``converted_checkpoint``)."""
    require_extra("transformers", "converting a checkpoint")  # torch reads safetensors
    import gguf
    import numpy as np
    from tqdm import tqdm

    config = checkpoint_config(folder)
    file_type = resolved_file_type(file_type, folder)
    architecture = getattr(gguf.MODEL_ARCH, ARCHITECTURES[config["model_type"]])
    writer = gguf.GGUFWriter(str(target), gguf.MODEL_ARCH_NAMES[architecture])
    _add_hyperparameters(writer, config, file_type, name or folder.name)
    _add_tokenizer(writer, folder, config)
    plan = list(_plan(folder, config, architecture, file_type))
    for tensor in plan:
        writer.add_tensor_info(tensor.name, tensor.shape, np.dtype(np.float32),
                               _nbytes(tensor.shape, tensor.kind),
                               raw_dtype=getattr(gguf.GGMLQuantizationType, tensor.kind))
    total = sum(_nbytes(t.shape, t.kind) for t in plan)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    with tqdm(total=total, unit="B", unit_scale=True, disable=not progress,
              desc=f"converting to {file_type}") as bar:
        for tensor in plan:
            data = _encoded(tensor.read(), tensor.kind)
            writer.write_tensor_data(data)
            bar.update(data.nbytes)
    writer.close()
    return file_type


def converted_checkpoint(folder: Path, *, progress: bool = True,
                         root: Path | None = None) -> tuple[Path, bool]:
    """The GGUF converted from the checkpoint in ``folder`` (``auto`` type), converted on
    first use and kept in ``<cache>/checkpoint-ggufs/``, named by the checkpoint's
    content and the gguf package's version; and whether it came from the cache."""
    checkpoint_config(folder)
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and (path.suffix in (".safetensors", ".json", ".jinja")):
            digest.update(f"{path.name}:{file_sha256(path)}\n".encode())
    root = root or cache_root() / "checkpoint-ggufs"
    target = root / f"{digest.hexdigest()[:32]}-{producer_key('gguf')}.gguf"
    if target.is_file():
        return target, True
    root.mkdir(parents=True, exist_ok=True)
    logger.warning("converting %s to GGUF once, for sharing; later uses read %s",
                   folder, target)
    with replacing(target) as partial:
        write_gguf(folder, partial, progress=progress)
    return target, False


# -- header ------------------------------------------------------------------------------
def resolved_file_type(file_type: str, folder: Path) -> str:
    """``file_type`` checked, and ``auto`` made the type it means for ``folder``."""
    kind = file_type.strip().upper()
    if kind == "AUTO":
        dtype = str(_config_dtype(folder))
        return "BF16" if "bfloat16" in dtype else "F16"
    if kind not in FILE_TYPES:
        raise InvalidRequestError(
            f"{file_type!r} is not a type convert writes; use one of "
            f"{', '.join(t.lower() for t in FILE_TYPES)} or auto (then adam quantize for "
            "smaller types)", param="type")
    return kind


def _config_dtype(folder: Path) -> Any:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return config.get("dtype") or config.get("torch_dtype") or "float32"


def _add_hyperparameters(writer: Any, config: dict[str, Any], file_type: str,
                         name: str) -> None:
    import gguf

    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    writer.add_name(name)
    writer.add_context_length(config.get("max_position_embeddings", 4096))
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads") or heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(config.get("rms_norm_eps", 1e-6))
    writer.add_vocab_size(config["vocab_size"])
    rope = {**(config.get("rope_scaling") or {}), **(config.get("rope_parameters") or {})}
    writer.add_rope_freq_base(rope.get("rope_theta", config.get("rope_theta", 10_000.0)))
    _add_rope_scaling(writer, rope)
    if config["model_type"] == "qwen3_moe":
        if not config.get("norm_topk_prob", False):
            raise InvalidRequestError(
                "this qwen3_moe checkpoint does not renormalize its top-k expert weights "
                "(norm_topk_prob false); llama.cpp's qwen3moe always does, so the GGUF "
                "would compute differently")
        writer.add_expert_count(config.get("num_experts") or config["num_local_experts"])
        writer.add_expert_used_count(config["num_experts_per_tok"])
        writer.add_expert_feed_forward_length(config["moe_intermediate_size"])
    writer.add_file_type(getattr(gguf.LlamaFileType,
                                 "ALL_F32" if file_type == "F32" else f"MOSTLY_{file_type}"))
    if file_type == "Q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _add_rope_scaling(writer: Any, rope: dict[str, Any]) -> None:
    import gguf

    kind = rope.get("rope_type") or rope.get("type") or "default"
    if kind == "default":
        return
    if kind not in ("yarn", "linear"):
        raise InvalidRequestError(
            f"RoPE scaling {kind!r} is not converted here (yarn and linear are); use "
            "llama.cpp's convert_hf_to_gguf.py")
    writer.add_rope_scaling_type(getattr(gguf.RopeScalingType, kind.upper()))
    writer.add_rope_scaling_factor(rope["factor"])
    if kind == "yarn":
        writer.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])


def _add_tokenizer(writer: Any, folder: Path, config: dict[str, Any]) -> None:
    import gguf

    tokenizer_file = folder / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise InvalidRequestError(f"{folder} has no tokenizer.json; convert reads fast "
                                  "(tokenizers) byte-level BPE tokenizers")
    spec = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or \
            (spec.get("decoder") or {}).get("type") != "ByteLevel":
        raise InvalidRequestError(
            f"{folder.name}'s tokenizer is not byte-level BPE (it is "
            f"{model.get('type')}); convert writes GPT-2-style BPE vocabularies (Qwen, "
            "SmolLM2, Llama 3); use llama.cpp's convert_hf_to_gguf.py for others")
    ids = [*model["vocab"].values(), *(a["id"] for a in spec.get("added_tokens", []))]
    size = max(config["vocab_size"], max(ids) + 1)
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [int(gguf.TokenType.UNUSED)] * size
    for text, token_id in model["vocab"].items():
        tokens[token_id], types[token_id] = text, int(gguf.TokenType.NORMAL)
    for added in spec.get("added_tokens", []):
        text = added["content"]
        # as llama.cpp's converter types them: special ones and <|...|> are control
        # tokens, the others (<think>, <tool_call>...) user-defined
        looks_special = text.startswith("<|") and text.endswith("|>")
        tokens[added["id"]] = text
        types[added["id"]] = int(gguf.TokenType.CONTROL if added.get("special") or
                                 looks_special else gguf.TokenType.USER_DEFINED)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(spec.get("pre_tokenizer") or {}, folder))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=size)
    if not special.merges:
        raise InvalidRequestError(f"{folder.name}'s tokenizer.json has no BPE merges")
    special.add_to_gguf(writer, quiet=True)


def _pre_tokenizer(spec: dict[str, Any], folder: Path) -> str:
    """llama.cpp's name for the pre-tokenizer ``spec`` (tokenizer.json) describes."""
    steps = spec.get("pretokenizers", []) if spec.get("type") == "Sequence" else [spec]
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and \
            steps[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        pattern = (steps[0].get("pattern") or {}).get("Regex")
        if pattern in _SPLIT_PATTERNS:
            return _SPLIT_PATTERNS[pattern]
    raise InvalidRequestError(
        f"{folder.name}'s pre-tokenizer ({' + '.join(map(str, kinds)) or 'none'}) is not one "
        "convert knows llama.cpp's name for (GPT-2, SmolLM, Qwen2/3, Llama 3); use "
        "llama.cpp's convert_hf_to_gguf.py, which identifies more")


# -- tensors -----------------------------------------------------------------------------
def _plan(folder: Path, config: dict[str, Any], architecture: Any, file_type: str
          ) -> Iterator[_Planned]:
    """Every GGUF tensor in file order, read lazily from the safetensors files."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    layers = config["num_hidden_layers"]
    names = gguf.get_tensor_name_map(architecture, layers)
    files = {}
    for path in sorted(folder.glob("*.safetensors")):
        handle = safe_open(str(path), framework="pt")
        files.update({key: handle for key in handle.keys()})  # noqa: SIM118 (not a dict)
    tied = config.get("tie_word_embeddings", False)
    experts: dict[tuple[int, str], list[tuple[int, str]]] = {}
    for key in sorted(files, key=_tensor_order):
        if key.endswith("rotary_emb.inv_freq") or (tied and key == "lm_head.weight"):
            continue
        parts = key.split(".")
        if ".mlp.experts." in key and parts[5].isdigit():  # model.layers.L.mlp.experts.E.x
            experts.setdefault((int(parts[2]), parts[6]), []).append((int(parts[5]), key))
            continue
        mapped = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise InvalidRequestError(f"{folder.name}: no llama.cpp tensor for {key}; the "
                                      "checkpoint has parts this architecture lacks")
        shape = tuple(files[key].get_slice(key).get_shape())
        yield _Planned(mapped, shape, _kind(mapped, shape, file_type),
                       _reader(files[key], key, config, architecture))
    for (layer, projection), members in sorted(experts.items()):
        members.sort()
        keys = [key for _, key in members]
        mapped = names.get_name(f"model.layers.{layer}.mlp.experts.{projection}",
                                try_suffixes=(".weight",))
        if mapped is None:
            raise InvalidRequestError(f"{folder.name}: no llama.cpp tensor for {keys[0]}")
        shape = (len(keys), *files[keys[0]].get_slice(keys[0]).get_shape())
        yield _Planned(f"{mapped}.weight", shape, _kind(mapped, shape, file_type),
                       lambda keys=keys: np.stack([_float32(files[k], k) for k in keys]))


def _tensor_order(key: str) -> tuple[int, str]:
    """Layers in numeric order (``layers.10`` after ``layers.9``), the rest by name."""
    parts = key.split(".")
    if len(parts) > 2 and parts[1] == "layers" and parts[2].isdigit():
        return int(parts[2]), key
    return -1 if "embed" in key else 1 << 30, key


def _kind(name: str, shape: tuple[int, ...], file_type: str) -> str:
    if len(shape) == 1 or name.endswith("ffn_gate_inp.weight") or file_type == "F32":
        return "F32"
    if file_type == "Q8_0" and shape[-1] % 32:
        return "F16"  # Q8_0 needs rows of whole 32-value blocks
    return file_type


def _reader(handle: Any, key: str, config: dict[str, Any], architecture: Any
            ) -> Callable[[], Any]:
    import gguf

    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    if architecture == gguf.MODEL_ARCH.LLAMA and key.endswith(("q_proj.weight",
                                                               "k_proj.weight")):
        count = heads if key.endswith("q_proj.weight") else kv_heads
        return lambda: interleave_rope_rows(_float32(handle, key), count)
    return lambda: _float32(handle, key)


def _float32(handle: Any, key: str) -> Any:
    return handle.get_tensor(key).float().numpy()


def interleave_rope_rows(weight: Any, heads: int) -> Any:
    """transformers' llama keeps each head's rotary pairs as (first half, second half) of
    its rows; llama.cpp's ``llama`` RoPE rotates adjacent rows (0,1), (2,3)...: put the
    rows of each pair next to each other."""
    rows = weight.shape[0]
    return (weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def _nbytes(shape: tuple[int, ...], kind: str) -> int:
    import gguf

    block, size = gguf.GGML_QUANT_SIZES[getattr(gguf.GGMLQuantizationType, kind)]
    count = 1
    for dim in shape:
        count *= dim
    return count // block * size


def _encoded(data: Any, kind: str) -> Any:
    """``data`` (float32) as the bytes of ``kind``, ready for ``write_tensor_data``."""
    import gguf
    import numpy as np

    if kind == "F32":
        return np.ascontiguousarray(data, dtype=np.float32)
    if kind == "F16":
        return np.ascontiguousarray(data, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32),
                                getattr(gguf.GGMLQuantizationType, kind))

