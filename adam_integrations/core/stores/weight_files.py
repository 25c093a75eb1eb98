"""What a model's weights on disk are, read from their headers alone (no model loaded):
format, architecture, parameters, quantization and context length, for a GGUF file or a
folder of safetensors. What ``adam models`` lists and ``/api/tags`` puts in ``details``.

A file that is not what it claims, or is cut short, raises ``ModelLoadError`` saying so
(``core.stores.gguf_header``, ``core.stores.safetensors_header``).

Example:
    >>> from adam_integrations.catalog.embedded import EMBEDDED_CHAT
    >>> summary = describe_weights(EMBEDDED_CHAT.require_path())  # doctest: +SKIP
    >>> summary.architecture, summary.parameters, summary.quantization  # doctest: +SKIP
    ('llama', 134515008, 'Q4_1')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from adam_integrations.core.stores.gguf_header import is_gguf, read_gguf_header
from adam_integrations.core.stores.safetensors_header import check_safetensors


@dataclass(frozen=True)
class WeightsSummary:
    """What the headers say about a model's weights."""

    format: str  # "gguf" or "safetensors"
    architecture: str | None = None
    parameters: int | None = None
    quantization: str | None = None  # a GGUF file type (Q4_K_M) or a dtype (bfloat16)
    context_length: int | None = None
    size_label: str | None = None  # as the file states it ("8B", "135M")


def describe_weights(path: str | Path) -> WeightsSummary:
    """The summary of a GGUF file, a safetensors file, or a folder holding safetensors
    (and its ``config.json``)."""
    path = Path(path)
    if path.is_file() and (path.suffix == ".gguf" or is_gguf(path)):
        header = read_gguf_header(path)
        return WeightsSummary("gguf", header.architecture, header.parameter_count or None,
                              header.quantization, header.context_length,
                              header.metadata.get("general.size_label"))
    files = [path] if path.is_file() else sorted(path.glob("*.safetensors"))
    parameters = sum(check_safetensors(file) for file in files)
    config = _config(path.parent if path.is_file() else path)
    return WeightsSummary("safetensors", config.get("model_type"), parameters or None,
                          config.get("torch_dtype") or config.get("dtype"),
                          config.get("max_position_embeddings"))


def _config(folder: Path) -> dict:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
