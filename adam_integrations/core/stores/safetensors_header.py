"""Check that a file is a whole safetensors file, from its header alone (milliseconds).

Layout: a little-endian uint64 ``N``, then ``N`` bytes of JSON (an object: tensor name ->
``{"dtype", "shape", "data_offsets": [begin, end]}``, and an optional ``__metadata__``),
then the tensor data, whose offsets count from the end of the header. An empty file, a
text file, or one cut short is refused with ``ModelLoadError`` saying which.

Example:
    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as f:
    ...     _ = f.write(b"not weights")
    >>> check_safetensors(f.name)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.ModelLoadError: ... is not a safetensors file: ...
    >>> os.unlink(f.name)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from adam_integrations.core.errors import ModelLoadError

MAX_HEADER = 100 * 1024 * 1024  # the safetensors format's own limit


def check_safetensors(path: str | Path) -> int:
    """The number of parameters (elements of every tensor) in the safetensors file at
    ``path``; ModelLoadError when it is not one, or is shorter than its tensors need."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        length = int.from_bytes(handle.read(8), "little") if size >= 8 else 0
        if size < 8 or not 2 <= length <= min(MAX_HEADER, size - 8):
            raise ModelLoadError(f"{path} is not a safetensors file: it does not start with "
                                 "a header length that fits the file")
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            raise ModelLoadError(f"{path} is not a safetensors file: its header is not "
                                 "JSON") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path} is not a safetensors file: its header is not an object")
    end = parameters = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        offsets = tensor.get("data_offsets") if isinstance(tensor, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and o >= 0 for o in offsets)):
            raise ModelLoadError(f"{path} is corrupt: tensor {name!r} has no valid "
                                 "data_offsets")
        end = max(end, offsets[1])
        shape = tensor.get("shape") or []
        parameters += math.prod(d for d in shape if isinstance(d, int))
    if 8 + length + end > size:
        raise ModelLoadError(
            f"{path} is truncated: its tensors need {8 + length + end:,} bytes and the file "
            f"has {size:,}; download it again")
    return parameters
