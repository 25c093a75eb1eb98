"""Opt-in int8 embeddings on ONNX Runtime (``quantized=True``) on the real embedded
all-MiniLM-L6-v2: exported and quantized once, cached, close to fp32, never the default."""

from __future__ import annotations

import pytest

from adam_integrations import InvalidRequestError
from adam_integrations.backends.local.huggingface import HuggingFaceModel
from tests.integration.test_huggingface_embeddings import MIXED_LENGTHS, TEXTS, cosine

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def quantized(embedding_folder):
    model = HuggingFaceModel(str(embedding_folder), quantized=True)
    model.load()
    yield model
    model.unload()


def test_int8_vectors_stay_close_to_fp32_and_keep_meaning(quantized, fp32_embedder):
    ours = quantized.embed(MIXED_LENGTHS)
    reference = fp32_embedder.embed(MIXED_LENGTHS)
    similarities = [cosine(a, b) for a, b in zip(ours, reference, strict=True)]
    assert min(similarities) > 0.96  # 0.974 measured; bf16 stays above 0.9999
    assert min(similarities) < 0.9999  # really int8
    cat, kitten, stocks = quantized.embed(
        ["A cat sits on the mat.", "A kitten rests on a rug.", "Stock markets fell sharply."])
    assert cosine(cat, kitten) > cosine(cat, stocks) + 0.2


def test_the_info_says_int8_on_onnx_and_where_the_cached_export_is(quantized):
    info = quantized.info()
    assert (info.format, info.dtype, info.device) == ("onnx", "int8", "cpu")
    assert info.quantization.startswith("int8") and info.embedding_dimension == 384
    assert "-torch-" in info.details["onnx_model"] and "onnxruntime-" in info.details["onnx_model"]


def test_a_second_load_reads_the_cached_export_and_gives_the_same_vectors(
        quantized, embedding_folder):
    again = HuggingFaceModel(str(embedding_folder), quantized=True)
    try:
        assert again.info().details["from_onnx_cache"] is True
        assert again.info().details["onnx_model"] == quantized.info().details["onnx_model"]
        assert again.embed(TEXTS) == quantized.embed(TEXTS)
    finally:
        again.unload()


def test_quantized_is_never_the_default(embedder):
    assert embedder.info().format == "safetensors" and "onnx_model" not in embedder.info().details


def test_quantized_with_a_dtype_or_on_a_chat_model_is_refused_clearly(
        embedding_folder, chat_gguf_path, chat_model):  # chat_model: converted the GGUF
    with pytest.raises(InvalidRequestError, match="drop dtype="):
        HuggingFaceModel(str(embedding_folder), quantized=True, dtype="bfloat16").load()
    with pytest.raises(InvalidRequestError, match="for embedding models"):
        HuggingFaceModel(str(chat_gguf_path), quantized=True).load()
    with pytest.raises(InvalidRequestError, match="True or False"):
        HuggingFaceModel(str(embedding_folder), quantized="yes")
