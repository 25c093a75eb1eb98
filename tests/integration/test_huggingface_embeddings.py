"""HuggingFaceModel embeddings on the real embedded all-MiniLM-L6-v2."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import threading
from pathlib import Path

import pytest

from adam_integrations import ModelNotFoundError, UnsupportedOperationError
from adam_integrations.backends.local import compute
from adam_integrations.backends.local.huggingface import HuggingFaceModel

TEXTS = [
    "A cat sits on the mat.",
    "hi",
    "Transformers process whole sequences in parallel with attention. " * 12,
    "Ünïcödé and 日本語 text",
    "",
    "The quick brown fox jumps over the lazy dog.",
]


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.fixture(scope="module")
def vectors(embedder):
    return embedder.embed(TEXTS)


SENTENCES = [
    "The river rose after three days of rain.", "Our build server restarts at midnight.",
    "Apples keep longer in a cool, dark cellar.", "The ledger did not balance in March.",
    "Tides follow the moon more than the wind.", "Docker images should pin their versions.",
]
MIXED_LENGTHS = [" ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i * i % 41))
                 for i in range(40)] + TEXTS
"""46 texts of 1 to 41 sentences (10 to ~400 tokens, truncated at the model's 256), and
the six above."""


def test_vectors_equal_sentence_transformers_within_cosine_0_9999(vectors, embedding_folder):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(embedding_folder), device="cpu").encode(TEXTS)
    for ours, theirs in zip(vectors, reference, strict=True):
        assert cosine(ours, theirs.tolist()) > 0.9999


def test_float32_gives_sentence_transformers_vectors_exactly(fp32_embedder, embedding_folder):
    from sentence_transformers import SentenceTransformer

    assert fp32_embedder.info().dtype == "float32"
    reference = SentenceTransformer(str(embedding_folder), device="cpu").encode(TEXTS)
    for ours, theirs in zip(fp32_embedder.embed(TEXTS), reference, strict=True):
        assert cosine(ours, theirs.tolist()) > 0.999999


def test_bf16_by_default_where_the_cpu_computes_it_every_vector_close_to_fp32(
        embedder, fp32_embedder):
    from adam_integrations.backends.local.huggingface.devices import cpu_has_native_bf16

    expected = "bfloat16" if cpu_has_native_bf16() else "float32"
    assert embedder.info().dtype == expected
    default, exact = embedder.embed(MIXED_LENGTHS), fp32_embedder.embed(MIXED_LENGTHS)
    similarities = [cosine(a, b) for a, b in zip(default, exact, strict=True)]
    assert min(similarities) >= 0.9999
    if expected == "bfloat16":  # really another precision, not fp32 twice
        assert min(similarities) < 0.9999999


def test_vectors_are_plain_normalized_floats_of_the_models_dimension(vectors, embedder):
    assert embedder.info().embedding_dimension == 384
    for vector in vectors:
        assert len(vector) == 384 and all(type(x) is float for x in vector)
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-5)


def test_length_sorted_batching_keeps_the_input_order(vectors, embedding_folder):
    small_batches = HuggingFaceModel(str(embedding_folder), embed_batch_size=2)
    try:
        for ours, batched in zip(vectors, small_batches.embed(TEXTS), strict=True):
            assert cosine(ours, batched) > 0.9999  # bf16: other padding, other rounding
    finally:
        small_batches.unload()


async def test_concurrent_requests_are_embedded_together(embedding_folder, vectors):
    """As a server's users send them: one text per request, all at once. They wait while
    the compute thread is busy, then go through the model as one computation."""
    model = HuggingFaceModel(str(embedding_folder))
    model.load()
    try:
        release = threading.Event()
        held = compute.submit(release.wait)
        requests = asyncio.gather(*(model.aembed([text]) for text in TEXTS))
        queue = model.engine(load=False).embeddings
        for _ in range(500):  # polled here: a worker thread of its own could be the one
            if queue.waiting == len(TEXTS):  # a request waits for (6 on 2 cores)
                break
            await asyncio.sleep(0.02)
        release.set()
        held.result()
        answers = await requests
        assert model.info().details["most_at_once"] == len(TEXTS)
        for answer, expected in zip(answers, vectors, strict=True):
            assert len(answer) == 1 and cosine(answer[0], expected) > 0.9999
    finally:
        model.unload()


def test_related_texts_are_closer_than_unrelated_ones(embedder):
    cat, kitten, stocks = embedder.embed(
        ["A cat sits on the mat.", "A kitten rests on a rug.", "Stock markets fell sharply."]
    )
    assert cosine(cat, kitten) > cosine(cat, stocks) + 0.2


def test_embedding_nothing_returns_nothing_and_bad_input_is_a_type_error(embedder):
    assert embedder.embed([]) == []
    with pytest.raises(TypeError, match="wrap a single text"):
        embedder.embed("a single string")
    with pytest.raises(TypeError, match="not a str"):
        embedder.embed(["fine", None])


async def test_async_embedding_equals_sync_embedding(embedder):
    assert await embedder.aembed(TEXTS[:3]) == embedder.embed(TEXTS[:3])


def test_an_embedding_model_refuses_to_chat(embedder):
    with pytest.raises(UnsupportedOperationError, match="embedding model"):
        embedder.chat([{"role": "user", "content": "hi"}])


def _fake_hub_cache(root: Path, repo_id: str, files: Path) -> Path:
    """The layout huggingface_hub writes: blobs, snapshots/<commit>/, refs/main."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(files, snapshot, copy_function=os.link)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return root


def test_a_hub_id_loads_offline_from_the_local_hub_cache(tmp_path, embedding_folder, vectors):
    cache = _fake_hub_cache(tmp_path, "sentence-transformers/all-MiniLM-L6-v2", embedding_folder)
    model = HuggingFaceModel("hf:sentence-transformers/all-MiniLM-L6-v2", cache_dir=cache,
                             allow_download=False)
    try:
        assert cosine(model.embed(TEXTS[:1])[0], vectors[0]) > 0.9999  # bf16: batch shapes
        assert model.info().name == "sentence-transformers/all-MiniLM-L6-v2"
    finally:
        model.unload()


def test_a_hub_id_missing_from_the_cache_with_downloads_off_says_how_to_get_it(tmp_path):
    model = HuggingFaceModel("hf:someone/missing-model", cache_dir=tmp_path, allow_download=False)
    with pytest.raises(ModelNotFoundError, match="hf download someone/missing-model"):
        model.load()


def test_a_hub_id_that_cannot_be_downloaded_offline_gives_a_clear_error(tmp_path):
    model = HuggingFaceModel("hf:someone/missing-model", cache_dir=tmp_path)
    with pytest.raises(ModelNotFoundError, match="someone/missing-model"):
        model.load()
