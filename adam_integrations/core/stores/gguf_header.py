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

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from adam_integrations.core.errors import ModelLoadError

# Arrays longer than this (tokenizer vocabularies) are skipped, not kept.
_MAX_KEPT_ARRAY = 64
_MAX_NESTING = 4  # arrays within arrays: model files have none; deeper ones exhaust the stack

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
    parameter_count: int = 0  # elements of every tensor
    tensor_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    """Each tensor's dimensions in ggml's order (the fastest-varying first: a weight of
    ``out x in`` rows is ``(in, out)``)."""

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
    """Parse the header of the GGUF file at ``path``, and check that the file holds every
    byte its tensors need (a file cut short by a failed download is refused here, not by
    llama.cpp). Every length read is checked against what the file has left, so a
    corrupt header (one flipped bit can make a length of exabytes) is a ``ModelLoadError``
    saying so, never a ``MemoryError``."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            reader = _Reader(handle, path.stat().st_size)
            if handle.read(4) != b"GGUF":
                raise ModelLoadError(f"{path} is not a GGUF file (no GGUF magic bytes)")
            version, tensors, count = reader.unpack("<I"), reader.unpack("<Q"), reader.unpack(
                "<Q")
            if version not in (2, 3):
                raise ModelLoadError(f"{path} is GGUF version {version}; versions 2 and 3 "
                                     "are supported")
            reader.check_count(count, 8 + 4 + 1, "metadata entries")
            reader.check_count(tensors, 8 + 4 + 8 + 4 + 8, "tensors")
            metadata = {}
            for _ in range(count):
                key = reader.string()
                metadata[key] = reader.value(reader.unpack("<I"))
            needed, parameters, shapes = _tensor_extent(reader, tensors,
                                                        metadata.get("general.alignment"))
    except (struct.error, UnicodeDecodeError, EOFError, ValueError, OverflowError,
            MemoryError) as error:
        raise ModelLoadError(
            f"{path} is truncated or corrupt: its GGUF header cannot be read ({error}); "
            "download the file again"
        ) from None
    size = path.stat().st_size
    if size < needed:
        raise ModelLoadError(
            f"{path} is truncated: its tensors need {needed:,} bytes and the file has "
            f"{size:,}; download the file again")
    return GGUFHeader(version=version, tensor_count=tensors, metadata=metadata,
                      parameter_count=parameters, tensor_shapes=shapes)


class _Reader:
    """Reads a GGUF header from ``handle``, refusing any length beyond the file's end."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle, self.size = handle, size

    def left(self) -> int:
        return self.size - self.handle.tell()

    def check_count(self, count: int, least_bytes_each: int, what: str) -> None:
        if count * least_bytes_each > self.left():
            raise EOFError(f"it claims {count:,} {what}, more than the file can hold")

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = self.handle.read(size)
        if len(data) < size:
            raise EOFError("unexpected end of file")
        return struct.unpack(fmt, data)[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > self.left():
            raise EOFError(f"a string of {length:,} bytes runs past the end of the file")
        return self.handle.read(length).decode("utf-8")

    def value(self, kind: int, depth: int = 0) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            if depth >= _MAX_NESTING:
                raise ValueError(f"it has arrays nested more than {_MAX_NESTING} deep, which "
                                 "no model file has")
            item_kind, length = self.unpack("<I"), self.unpack("<Q")
            item_size = struct.calcsize(_SCALARS[item_kind]) if item_kind in _SCALARS else 8
            self.check_count(length, item_size, "array items")
            if length > _MAX_KEPT_ARRAY:
                self.skip_array(item_kind, length, depth + 1)
                return None
            return [self.value(item_kind, depth + 1) for _ in range(length)]
        raise struct.error(f"unknown GGUF value type {kind}")

    def skip_array(self, kind: int, length: int, depth: int) -> None:
        if kind in _SCALARS:
            self.handle.seek(struct.calcsize(_SCALARS[kind]) * length, 1)
            return
        if kind != _STRING:
            for _ in range(length):
                self.value(kind, depth)
            return
        read, seek = self.handle.read, self.handle.seek
        try:
            for _ in range(length):  # a vocabulary: tens of thousands of strings, inlined
                seek(int.from_bytes(read(8), "little"), 1)
        except OSError:  # a length that seeks before the start
            raise EOFError("a string length points outside the file") from None
        if self.left() < 0:
            raise EOFError("a string runs past the end of the file")


_MAX_DIMENSIONS = 4  # llama.cpp's GGML_MAX_DIMS


def _tensor_extent(reader: _Reader, tensors: int, alignment: Any
                   ) -> tuple[int, int, dict[str, tuple[int, ...]]]:
    """The file size the tensors need, their elements and shapes: the tensor infos are
    read (name, dimensions, type, offset); the data section starts at the next multiple
    of the alignment."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    end = parameters = 0
    shapes: dict[str, tuple[int, ...]] = {}
    for _ in range(tensors):
        name = reader.string()
        dimensions = reader.unpack("<I")
        if not 0 < dimensions <= _MAX_DIMENSIONS:
            raise ValueError(f"a tensor with {dimensions} dimensions")
        shape = tuple(reader.unpack("<Q") for _ in range(dimensions))
        shapes[name] = shape
        elements = math.prod(shape)
        kind, offset = reader.unpack("<I"), reader.unpack("<Q")
        try:
            block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
        except (ValueError, KeyError):
            raise ValueError(f"a tensor of unknown type {kind}") from None
        end = max(end, offset + elements // block * block_bytes)
        parameters += elements
    align = alignment if isinstance(alignment, int) and alignment > 0 else 32
    start = -(-reader.handle.tell() // align) * align
    return start + end, parameters, shapes


def is_gguf(path: str | Path) -> bool:
    """Whether the file starts with the GGUF magic bytes (False when it cannot be read)."""
    try:
        with Path(path).open("rb") as handle:
            return handle.read(4) == b"GGUF"
    except OSError:
        return False
