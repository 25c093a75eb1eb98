"""Read a GGUF file's metadata (architecture, quantization, context length) quickly.

``gguf.GGUFReader`` maps every tensor as well, which takes seconds for a small model;
the key/value header alone is read here in milliseconds, with the value types and file
type names of the ``gguf`` package. A file that is not GGUF, or is cut short, raises
``ModelLoadError`` with what was wrong.

Layout (GGUF v2/v3, little-endian): magic ``GGUF``, uint32 version, uint64 tensor count,
uint64 key/value count, then each key as (uint64 length, UTF-8 bytes), a uint32 value
type and the value; arrays are (uint32 item type, uint64 count, items).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from adam_integrations.core.errors import ModelLoadError

# Arrays longer than this (tokenizer vocabularies) are skipped, not kept.
_MAX_KEPT_ARRAY = 64

_SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
                            7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


ENCODER_ARCHITECTURES = frozenset({"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2",
                                   "jina-bert-v3", "modern-bert", "neo-bert", "t5encoder"})


@dataclass(frozen=True)
class GGUFHeader:
    """The metadata of one GGUF file."""

    version: int
    tensor_count: int
    metadata: dict[str, Any]

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def context_length(self) -> int | None:
        return self.metadata.get(f"{self.architecture}.context_length")

    def field(self, name: str) -> Any:
        """An architecture-scoped key, e.g. ``field("block_count")`` for
        ``qwen3.block_count``."""
        return self.metadata.get(f"{self.architecture}.{name}")

    @property
    def is_embedding_model(self) -> bool:
        """Whether the file says it is an embedding model (it sets a pooling type, or is
        an encoder-only architecture)."""
        return (self.field("pooling_type") is not None
                or self.architecture in ENCODER_ARCHITECTURES)

    @property
    def quantization(self) -> str | None:
        """The file type as llama.cpp names it, e.g. ``Q4_1`` or ``Q8_0``."""
        file_type = self.metadata.get("general.file_type")
        if file_type is None:
            return None
        from gguf import LlamaFileType

        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_")
        except ValueError:
            return str(file_type)


def read_gguf_header(path: str | Path) -> GGUFHeader:
    """Parse the header of the GGUF file at ``path``."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ModelLoadError(f"{path} is not a GGUF file (no GGUF magic bytes)")
            version, tensors, count = _unpack(handle, "<I"), _unpack(handle, "<Q"), _unpack(
                handle, "<Q")
            if version not in (2, 3):
                raise ModelLoadError(f"{path} is GGUF version {version}; versions 2 and 3 "
                                     "are supported")
            metadata = {}
            for _ in range(count):
                key = _string(handle)
                metadata[key] = _value(handle, _unpack(handle, "<I"))
    except (struct.error, UnicodeDecodeError, EOFError) as error:
        raise ModelLoadError(
            f"{path} is truncated or corrupt: its GGUF header cannot be read ({error}); "
            "download the file again"
        ) from error
    return GGUFHeader(version=version, tensor_count=tensors, metadata=metadata)


def _unpack(handle: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) < size:
        raise EOFError("unexpected end of file")
    return struct.unpack(fmt, data)[0]


def _string(handle: BinaryIO) -> str:
    length = _unpack(handle, "<Q")
    data = handle.read(length)
    if len(data) < length:
        raise EOFError("unexpected end of file in a string")
    return data.decode("utf-8")


def _value(handle: BinaryIO, kind: int) -> Any:
    if kind in _SCALARS:
        return _unpack(handle, _SCALARS[kind])
    if kind == _STRING:
        return _string(handle)
    if kind == _ARRAY:
        item_kind, length = _unpack(handle, "<I"), _unpack(handle, "<Q")
        if length > _MAX_KEPT_ARRAY:
            _skip_array(handle, item_kind, length)
            return None
        return [_value(handle, item_kind) for _ in range(length)]
    raise struct.error(f"unknown GGUF value type {kind}")


def _skip_array(handle: BinaryIO, kind: int, length: int) -> None:
    if kind in _SCALARS:
        handle.seek(struct.calcsize(_SCALARS[kind]) * length, 1)
        return
    for _ in range(length):
        if kind == _STRING:
            handle.seek(_unpack(handle, "<Q"), 1)
        else:
            _value(handle, kind)


def is_gguf(path: str | Path) -> bool:
    """Whether the file starts with the GGUF magic bytes (False when it cannot be read)."""
    try:
        with Path(path).open("rb") as handle:
            return handle.read(4) == b"GGUF"
    except OSError:
        return False
