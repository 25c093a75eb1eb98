"""``adam imatrix``: an importance matrix, for quantizations that keep what a text uses.

llama.cpp's quantizers weigh each column of a weight matrix by how large the values that
meet it are: the mean of the squared inputs of every matrix multiplication, over a text
(``llama-imatrix``'s statistic). Here the model runs on transformers (float32) over the
text in chunks of ``context`` tokens, a forward hook on every linear layer summing the
squares of its inputs per column and counting the tokens, and the sums are written under
llama.cpp's tensor names in ``llama-imatrix``'s GGUF format (``<tensor>.in_sum2``,
``<tensor>.counts``, ``imatrix.datasets``, ``imatrix.chunk_count``,
``imatrix.chunk_size``), so ``llama-quantize --imatrix`` reads these files and
``adam quantize --imatrix`` reads theirs.

The model: a transformers checkpoint, or a GGUF (its transformers conversion, dequantized:
compute the matrix on the unquantized file). Mixture-of-experts expert weights are not
linear layers in transformers and get no entry (their quantization then uses none).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adam_integrations.catalog.defaults import resolve_model
from adam_integrations.core.atomic import replacing
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.extras import require_extra
from adam_integrations.core.types import ModelSource
from adam_integrations.sharing.checkpoint_gguf import (
    ARCHITECTURES,
    checkpoint_config,
    checkpoint_folder,
)
from adam_integrations.tools.evaluate import chunk_count
from adam_integrations.tools.quantize import new_output

DEFAULT_CONTEXT = 512
"""Tokens per chunk (``llama-imatrix``'s default)."""


@dataclass(frozen=True)
class ImportanceMatrix:
    """What ``importance_matrix`` wrote."""

    path: Path
    entries: int
    chunks: int
    tokens: int
    seconds: float


def importance_matrix(model: str | os.PathLike[str] | ModelSource, text: str, *,
                      output: str | os.PathLike[str] | None = None,
                      context: int = DEFAULT_CONTEXT, chunks: int | None = None,
                      dataset: str = "text", progress: bool = True) -> ImportanceMatrix:
    """The importance matrix of ``model`` over ``text`` (``chunks`` caps the chunks read),
    written to ``output`` (default ``<model>-imatrix.gguf``; never over an existing
    file); ``dataset`` names the text in the file.

    >>> importance_matrix("ollama:nothing-here:latest", "text")
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: ... is not a transformers checkpoint ...
    """
    require_extra("transformers", "an importance matrix")
    import torch
    from tqdm import tqdm

    if context < 16:
        raise InvalidRequestError(f"context={context}: give at least 16 tokens per chunk")
    source = model if isinstance(model, ModelSource) else resolve_model(model)
    folder = _transformers_folder(source)
    config = checkpoint_config(folder)
    target = new_output(output, source, "imatrix")
    started = time.perf_counter()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokens = list(tokenizer(text)["input_ids"])
    count = chunk_count(len(tokens), context, chunks, "an importance matrix")
    from adam_integrations.backends.local.huggingface.devices import without_loading_bar

    with without_loading_bar():  # this command's own bar follows the chunks
        network = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    sums = _collect(network, config, tokens, count, context,
                    lambda: tqdm(total=count, unit="chunk", disable=not progress,
                                 desc="importance matrix"))
    with replacing(target) as partial:
        _write(partial, config, sums, dataset, count, context)
    return ImportanceMatrix(target, len(sums), count, count * context,
                            time.perf_counter() - started)


def _transformers_folder(source: ModelSource) -> Path:
    if source.kind == "gguf":
        from adam_integrations.backends.local.huggingface.gguf_conversion import converted_gguf

        return converted_gguf(Path(source.location))[0]
    return checkpoint_folder(source)


def _collect(network: Any, config: dict[str, Any], tokens: list[int], count: int,
             context: int, bar: Any) -> dict[str, tuple[Any, int]]:
    """Per GGUF tensor name: the sum of the squared inputs per column, and the tokens."""
    import gguf
    import torch

    architecture = getattr(gguf.MODEL_ARCH, ARCHITECTURES[config["model_type"]])
    names = gguf.get_tensor_name_map(architecture, config["num_hidden_layers"])
    tied = config.get("tie_word_embeddings", False)
    sums: dict[str, list[Any]] = {}

    def hook(name: str) -> Any:
        def record(module: Any, inputs: tuple[Any, ...]) -> None:
            rows = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).float()
            entry = sums.setdefault(name, [torch.zeros(rows.shape[-1]), 0])
            entry[0] += (rows * rows).sum(0)
            entry[1] += rows.shape[0]
        return record

    handles = []
    for module_name, module in network.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        mapped = names.get_name(f"{module_name}.weight", try_suffixes=(".weight",))
        if mapped == "output.weight" and tied:
            mapped = "token_embd.weight"  # the matrix llama.cpp multiplies by
        if mapped is not None:
            handles.append(module.register_forward_pre_hook(hook(mapped)))
    try:
        with torch.inference_mode(), bar() as progress:
            for i in range(count):
                chunk = tokens[i * context:(i + 1) * context]
                network(input_ids=torch.tensor([chunk]))
                progress.update(1)
    finally:
        for handle in handles:
            handle.remove()
    return {name: (total.numpy(), rows) for name, (total, rows) in sums.items()}


def _write(path: Path, config: dict[str, Any], sums: dict[str, tuple[Any, int]],
           dataset: str, chunks: int, context: int) -> None:
    import gguf
    import numpy as np

    architecture = getattr(gguf.MODEL_ARCH, ARCHITECTURES[config["model_type"]])
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[architecture])
    writer.add_string("general.type", "imatrix")
    writer.add_array("imatrix.datasets", [dataset])
    writer.add_uint32("imatrix.chunk_count", chunks)
    writer.add_uint32("imatrix.chunk_size", context)
    for name, (total, rows) in sorted(sums.items()):
        writer.add_tensor(f"{name}.in_sum2", total.astype(np.float32).reshape(1, -1))
        writer.add_tensor(f"{name}.counts", np.array([[rows]], dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def read_importance_matrix(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Per tensor name, the mean squared input per column (float32), from a GGUF
    importance matrix written by ``importance_matrix`` or ``llama-imatrix``, as
    llama.cpp's ``load_imatrix`` normalizes it (each matrix's sums over its token count;
    a matrix that saw no token weighs every column 1)."""
    import gguf
    import numpy as np

    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as error:
        raise InvalidRequestError(f"cannot read the importance matrix {path}: {error} "
                                  "(give a GGUF file from adam imatrix or llama-imatrix)"
                                  ) from error
    tensors = {t.name: np.asarray(t.data, dtype=np.float32) for t in reader.tensors}
    values = {}
    for key, data in tensors.items():
        if not key.endswith(".in_sum2"):
            continue
        name = key.removesuffix(".in_sum2")
        counts = tensors.get(f"{name}.counts")
        if counts is None:
            raise InvalidRequestError(f"{path}: {name} has sums but no counts")
        matrices = data.reshape(counts.size, -1)
        per_token = np.where(counts.reshape(-1, 1) > 0,
                             matrices / np.maximum(counts.reshape(-1, 1), 1), 1.0)
        values[name] = per_token.astype(np.float32).reshape(-1)
    if not values:
        raise InvalidRequestError(f"{path} holds no importance matrix entries (.in_sum2); "
                                  "give a file from adam imatrix or llama-imatrix")
    return values
