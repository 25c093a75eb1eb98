"""The GGUF metadata reader used before any engine touches a file."""

from __future__ import annotations

import pytest

from adam_integrations import ModelLoadError
from adam_integrations.core.stores.gguf_header import read_gguf_header


def test_the_embedded_gguf_header_reads_architecture_context_and_quantization(chat_gguf_path):
    header = read_gguf_header(chat_gguf_path)
    assert (header.architecture, header.context_length, header.quantization) == (
        "llama", 8192, "Q4_1")
    assert header.tensor_count == 272 and "tokenizer.chat_template" in header.metadata


def test_a_file_without_the_magic_bytes_is_not_gguf(tmp_path):
    path = tmp_path / "x.gguf"
    path.write_bytes(b"PK\x03\x04 not gguf")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        read_gguf_header(path)


def test_a_header_cut_short_is_reported_as_truncated(tmp_path, chat_gguf_path):
    path = tmp_path / "x.gguf"
    path.write_bytes(chat_gguf_path.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        read_gguf_header(path)


def nested_array_gguf(path, depth: int) -> None:
    """A GGUF header whose one key holds arrays nested ``depth`` deep (a hostile file)."""
    import struct

    key = b"general.deep"
    value = struct.pack("<IQ", 4, 0)  # innermost: an empty array of uint32
    for _ in range(depth - 1):
        value = struct.pack("<IQ", 9, 1) + value  # an array of one array
    header = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
              + struct.pack("<I", 9) + value)
    path.write_bytes(header + b"\0" * (-len(header) % 32))  # the data's 32-byte alignment


def test_arrays_nested_thousands_deep_are_refused_not_a_recursion_error(tmp_path):
    path = tmp_path / "deep.gguf"
    nested_array_gguf(path, 5000)
    with pytest.raises(ModelLoadError, match="nested more than 4 deep"):
        read_gguf_header(path)
    nested_array_gguf(path, 3)  # what a file may hold is still read
    assert read_gguf_header(path).metadata["general.deep"] == [[[]]]
