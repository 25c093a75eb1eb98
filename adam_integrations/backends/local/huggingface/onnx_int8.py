"""Opt-in int8 embeddings through ONNX Runtime: ``HuggingFaceModel(..., quantized=True)``.

The encoder is exported once with ``torch.onnx`` (the TorchScript exporter: it needs no
package beyond torch) and quantized with ONNX Runtime's own dynamic quantization (int8
weights with a scale per output channel, activations quantized per batch; avx512-VNNI or
AVX2 kernels on x86). One scale per channel matters: over 46 mixed-length texts the worst
cosine to fp32 was 0.906 with one scale per tensor, 0.974 with one per channel. The
result is kept in ``<cache>/onnx-int8/<sha256 of the weights>-<versions>/``, named after
the torch, onnx and onnxruntime versions that wrote it (a newer one exports again), and
written whole or not at all (``core.stores.cache_entry``), as the GGUF conversions are.

Never the default: int8 moves vectors further from fp32 than bf16 does (measured in
``benchmarks/README.md``: cosine to fp32 and top-5 retrieval agreement), for a speed
close to bf16's on CPUs with native bf16. Where the CPU has no bf16, int8 is the fast path.
Runs on the CPU only. Needs ``pip install 'adam-integrations[onnx]'``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from adam_integrations.core.errors import ModelLoadError
from adam_integrations.core.hardware import usable_cores
from adam_integrations.core.paths import cache_root, producer_key
from adam_integrations.core.stores.cache_entry import is_complete, writing_entry
from adam_integrations.sharing.digest import file_sha256

logger = logging.getLogger(__name__)

MARKER = "adam-onnx.json"
MODEL_FILE = "model-int8.onnx"
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class OnnxEncoder:
    """An ONNX Runtime session that answers like a transformers encoder: called with the
    tokenizer's tensors, it returns ``.last_hidden_state`` as a torch tensor."""

    def __init__(self, path: Path, config: Any, *, from_cache: bool) -> None:
        import onnxruntime

        self.config = config
        """The transformers config of the model it was exported from."""
        self.from_cache = from_cache

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = usable_cores()
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]
        self.path = path

    def __call__(self, **inputs: Any) -> SimpleNamespace:
        import numpy as np
        import torch

        ids = inputs["input_ids"].numpy()
        feed = {name: inputs[name].numpy() if name in inputs else np.zeros_like(ids)
                for name in self._inputs}  # token_type_ids: zeros, as transformers defaults
        hidden = self._session.run(["last_hidden_state"], feed)[0]
        return SimpleNamespace(last_hidden_state=torch.from_numpy(hidden))


def quantized_encoder(folder: Path, model: Any, tokenizer: Any, *, name: str,
                      root: Path | None = None) -> OnnxEncoder:
    """The int8 ONNX encoder of the transformers ``model`` loaded from ``folder``
    (exported and quantized on first use)."""
    try:
        import onnxruntime  # noqa: F401
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as error:
        raise ModelLoadError(
            "quantized=True needs ONNX Runtime and onnx: pip install "
            "'adam-integrations[onnx]' (or leave quantized off: bf16/fp32 need neither)"
        ) from error
    weights = next((folder / w for w in _WEIGHTS if (folder / w).exists()), None)
    if weights is None:
        raise ModelLoadError(f"quantized=True: no {' or '.join(_WEIGHTS)} in {folder}")
    root = root or cache_root() / "onnx-int8"
    digest = file_sha256(weights)
    target = root / f"{digest}-{producer_key('torch', 'onnx', 'onnxruntime')}"
    if is_complete(target, MARKER):
        return OnnxEncoder(target / MODEL_FILE, model.config, from_cache=True)
    logger.warning("exporting %s to ONNX and quantizing it to int8 once; later loads use "
                   "%s", name, target)
    about = {"model": str(folder), "weights_sha256": digest,
             "producer": producer_key("torch", "onnx", "onnxruntime", "transformers")}
    with writing_entry(target, MARKER, about) as staging:
        exported = staging / "model-fp32.onnx"
        try:
            _export(model, tokenizer, exported)
            with _root_log_quiet():  # onnxruntime's advice to pre-process, on stderr
                quantize_dynamic(exported, staging / MODEL_FILE,
                                 weight_type=QuantType.QInt8, per_channel=True)
        except Exception as error:  # exporters fail in many ways; say which model and why
            raise ModelLoadError(
                f"quantized=True: {name} could not be exported to ONNX and quantized "
                f"({type(error).__name__}: {error}). Leave quantized off: the default "
                "(bf16 where the CPU computes it, else fp32) works for every model."
            ) from error
        exported.unlink()
    return OnnxEncoder(target / MODEL_FILE, model.config, from_cache=False)


@contextlib.contextmanager
def _root_log_quiet() -> Iterator[None]:
    """Drop what is logged to the root logger itself (onnxruntime's quantizer logs its
    notes there; with no handler set, Python prints them to stderr)."""
    def quiet(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def _export(model: Any, tokenizer: Any, path: Path) -> None:
    import torch

    names = [n for n in tokenizer.model_input_names
             if n in ("input_ids", "attention_mask", "token_type_ids")]
    sample = tokenizer(["an example", "a slightly longer example text"], padding=True,
                       return_tensors="pt")

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        torch.onnx.export(Encoder().eval(), tuple(sample[n] for n in names), str(path),
                          input_names=names, output_names=["last_hidden_state"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
