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
