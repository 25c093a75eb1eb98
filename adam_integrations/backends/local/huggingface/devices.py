"""Where and in which precision a transformers model runs: device and dtype defaults;
and loading without transformers' own progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from adam_integrations.core.errors import InvalidRequestError


def pick_device(requested: str | None) -> str:
    """``requested``, else cuda > mps > cpu, whichever this torch build can use."""
    if requested:
        return requested
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}


def pick_dtype(device: str, requested: str | None, *, for_embedding: bool) -> Any:
    """The torch dtype of the weights: ``requested``, else bf16/fp16 on GPUs, bf16 on CPUs
    that compute it natively (chat models; embedding models keep fp32 weights there and
    compute in bf16 under autocast: ``embedding_autocast``), else fp32."""
    import torch

    if requested:
        name = _DTYPES.get(str(requested).replace("torch.", "").lower())
        if name is None:
            raise InvalidRequestError(
                f"unknown dtype {requested!r}; use one of float32, bfloat16, float16"
            )
        return getattr(torch, name)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    if not for_embedding and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def embedding_autocast(device: str, requested: str | None) -> Any:
    """bf16 for an embedding model's forward pass under ``torch.autocast`` on CPUs that
    compute it natively when no dtype was asked for, else None.

    Autocast runs the matrix products in bf16 and keeps the fp32 weights, layer norms,
    softmax and residual sums: on this project's AVX512-BF16 machine 1.7x the speed of fp32
    for all-MiniLM-L6-v2, every vector within cosine 0.99996 of the fp32 one, where bf16
    weights (1.85x) fell to 0.99988 on long texts
    (``tests/integration/test_huggingface_embeddings.py`` checks 0.9999).
    ``dtype="float32"`` gives sentence-transformers' exact vectors.
    """
    if requested or device != "cpu" or not cpu_has_native_bf16():
        return None
    import torch

    return torch.bfloat16


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX).

    Measured on such a CPU (docs/speed.md), bf16 decodes faster than fp32 because
    it halves the bytes read per token; without hardware support it is emulated and slower.
    """
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, check, lambda: False)()) for check in checks)


@contextmanager
def without_loading_bar() -> Iterator[None]:
    """transformers' "Loading weights" bar off while a load runs (it was printed into
    ``adam demo``, ``adam embed`` and every embedding script, for loads of a second);
    turned back on after, unless the caller had turned it off."""
    from transformers.utils import logging as transformers_logging

    was_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            transformers_logging.enable_progress_bar()
