"""GGUF files from every place users keep them, loaded in place: a Hugging Face cache
(laid out here as huggingface_hub lays it out), Ollama's store (manifest and blob), and
the bad input those places can hold."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adam_integrations import (
    InvalidRequestError,
    ModelManager,
    ModelNotFoundError,
    resolve,
)
from adam_integrations.backends.local.huggingface import HuggingFaceModel
from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.sharing.digest import file_sha256

COMMIT = "0123456789abcdef0123456789abcdef01234567"
HI = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def digest(chat_gguf_path) -> str:
    return file_sha256(chat_gguf_path)


@pytest.fixture
def hf_cache(tmp_path, monkeypatch, chat_gguf_path, digest) -> Path:
    """A hub cache holding acme/tiny-GGUF with one GGUF, as huggingface_hub stores it:
    blobs/<sha256>, snapshots/<commit>/<file> -> ../../blobs/<sha256>, refs/main."""
    repo = tmp_path / "hub" / "models--acme--tiny-GGUF"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / digest).symlink_to(chat_gguf_path)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "tiny-Q4_1.gguf").symlink_to(Path("../..") / "blobs" / digest)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return snapshot / "tiny-Q4_1.gguf"


@pytest.fixture
def ollama_store(tmp_path, monkeypatch, chat_gguf_path, digest) -> Path:
    """An Ollama store holding 'smol:latest' (manifest + model blob)."""
    root = tmp_path / "ollama"
    (root / "blobs").mkdir(parents=True)
    (root / "blobs" / f"sha256-{digest}").symlink_to(chat_gguf_path)
    manifest = root / "manifests" / "registry.ollama.ai" / "library" / "smol" / "latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": "sha256:" + "0" * 64, "size": 2},
        "layers": [{"mediaType": "application/vnd.ollama.image.model",
                    "digest": f"sha256:{digest}", "size": chat_gguf_path.stat().st_size}]}))
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    return root


@pytest.mark.parametrize("reference", ["hf:acme/tiny-GGUF:Q4_1", "hf.co/acme/tiny-GGUF:q4_1",
                                       "acme/tiny-GGUF", "hf:acme/tiny-GGUF"])
def test_a_cached_hub_gguf_resolves_to_the_file_in_the_cache(hf_cache, reference):
    source = resolve(reference)
    assert source.kind == "gguf" and Path(source.location) == hf_cache
    assert "from the local cache, used in place" in source.explanation


def test_a_cached_hub_gguf_runs_on_llama_cpp_by_default(hf_cache, chat_gguf_path):
    manager = ModelManager(model="hf.co/acme/tiny-GGUF:Q4_1")
    assert isinstance(manager.backend, LlamaCppModel) and "llama.cpp" in manager.explanation
    try:
        assert manager.chat(HI, max_tokens=4, temperature=0.0).usage.completion_tokens > 0
        assert Path(manager.info.path).resolve() == chat_gguf_path.resolve()
    finally:
        manager.unload()


def test_a_quantization_the_repo_lacks_lists_what_it_has(hf_cache):
    with pytest.raises(ModelNotFoundError, match=r"no GGUF for Q8_0.*tiny-Q4_1.gguf"):
        LlamaCppModel("hf:acme/tiny-GGUF:Q8_0", allow_download=False).load()


def test_an_uncached_gguf_repo_offline_says_how_to_get_it(hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = resolve("hf:acme/other-GGUF:Q4_K_M")
    assert (source.kind, source.gguf_repo, source.quantization) == ("hub", True, "Q4_K_M")
    for backend in (LlamaCppModel, HuggingFaceModel):
        with pytest.raises(ModelNotFoundError, match="hf download acme/other-GGUF"):
            backend(source).load()


def test_an_ollama_model_runs_from_its_blob_in_place(ollama_store, digest):
    source = resolve("ollama:smol")
    assert source.kind == "gguf" and source.name == "smol:latest"
    assert Path(source.location) == ollama_store / "blobs" / f"sha256-{digest}"
    manager = ModelManager(model="ollama:smol")
    try:
        assert manager.backend.name == "llamacpp"
        assert manager.chat(HI, max_tokens=4, temperature=0.0).text
    finally:
        manager.unload()


def test_an_ollama_model_not_in_the_store_is_left_for_the_ollama_backend(ollama_store):
    source = resolve("ollama:qwen3:0.6b")
    assert (source.kind, source.location) == ("ollama", "qwen3:0.6b")
    with pytest.raises(ModelNotFoundError, match="not in Ollama's store"):
        HuggingFaceModel(source)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/model", "a/b/c/d", "smol:..",
                                  "smol:la test"])
def test_ollama_names_that_could_leave_the_store_are_refused(ollama_store, name):
    with pytest.raises(InvalidRequestError, match="not a valid Ollama model name"):
        resolve(f"ollama:{name}")


def test_a_corrupt_manifest_is_reported_with_its_path(ollama_store):
    manifest = ollama_store / "manifests" / "registry.ollama.ai" / "library" / "smol" / "latest"
    manifest.write_text("{not json")
    with pytest.raises(ModelNotFoundError, match=r"manifest .*latest cannot be read"):
        resolve("ollama:smol")


def test_a_manifest_whose_digest_is_malformed_is_refused(ollama_store):
    manifest = ollama_store / "manifests" / "registry.ollama.ai" / "library" / "smol" / "latest"
    data = json.loads(manifest.read_text())
    data["layers"][0]["digest"] = "sha256:../../../etc/passwd"
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelNotFoundError, match="malformed digest"):
        resolve("ollama:smol")
    assert os.path.exists(manifest)  # nothing the user owns is touched
