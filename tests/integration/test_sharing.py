"""Model sharing with real files: the embedded GGUF in a Hugging Face cache layout, shared
into a temporary Ollama store as a hardlink, loaded back through transformers, listed and
answered by ``adam serve``; traversal attempts and corrupt manifests rejected."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from adam_integrations import AdamError, InvalidRequestError, ModelManager, resolve
from adam_integrations.sharing.digest import file_sha256
from adam_integrations.sharing.index import build_index, dedupe
from adam_integrations.sharing.ollama_share import go_template, share_gguf

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def _disk_usage(*roots: Path) -> int:
    """Bytes on disk under ``roots``, each inode counted once (as `du` does)."""
    seen, total = set(), 0
    for root in roots:
        for path in root.rglob("*"):
            stat = path.lstat()
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


@pytest.fixture
def stores(tmp_path, monkeypatch, chat_gguf_path):
    """A Hugging Face cache holding a real copy of the embedded GGUF (as a hub download
    leaves it), and an empty Ollama store, both on the same file system."""
    digest = file_sha256(chat_gguf_path)
    repo = tmp_path / "hf" / "models--acme--smol-GGUF"
    (repo / "blobs").mkdir(parents=True)
    blob = repo / "blobs" / digest
    os.link(chat_gguf_path, blob) if _same_device(chat_gguf_path, tmp_path) else \
        blob.write_bytes(chat_gguf_path.read_bytes())
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "smol-Q4_1.gguf").symlink_to(Path("../..") / "blobs" / digest)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    ollama = tmp_path / "ollama"
    ollama.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("OLLAMA_MODELS", str(ollama))
    return {"hf": tmp_path / "hf", "ollama": ollama, "blob": blob, "digest": digest,
            "gguf": snapshot / "smol-Q4_1.gguf"}


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def test_sharing_hf_to_ollama_is_a_hardlink_and_writes_a_valid_manifest(stores):
    before = _disk_usage(stores["hf"], stores["ollama"])
    result = share_gguf(stores["gguf"], "smol:q4")
    assert result.link == "hardlink" and result.extra_bytes == 0
    assert result.blob.stat().st_ino == stores["blob"].stat().st_ino  # the same inode
    grown = _disk_usage(stores["hf"], stores["ollama"]) - before
    assert grown < 64 * 1024  # manifest, config, template, params: no weights twice
    manifest = json.loads(result.manifest.read_text())
    assert result.manifest == stores["ollama"] / "manifests/registry.ollama.ai/library/smol/q4"
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    model = next(x for x in manifest["layers"]
                 if x["mediaType"] == "application/vnd.ollama.image.model")
    assert model["digest"] == f"sha256:{stores['digest']}"
    for layer in [manifest["config"], *manifest["layers"]]:  # every blob is there, by digest
        blob = stores["ollama"] / "blobs" / layer["digest"].replace(":", "-")
        assert blob.stat().st_size == layer["size"]
        assert file_sha256(blob) == layer["digest"].split(":")[1]
    config = json.loads((stores["ollama"] / "blobs" /
                         manifest["config"]["digest"].replace(":", "-")).read_text())
    assert (config["model_format"], config["model_family"], config["file_type"]) == (
        "gguf", "llama", "Q4_1")
    params = next(x for x in manifest["layers"]
                  if x["mediaType"] == "application/vnd.ollama.image.params")
    stop = json.loads((stores["ollama"] / "blobs" /
                       params["digest"].replace(":", "-")).read_text())["stop"]
    assert "<|im_end|>" in stop


def test_the_shared_model_loads_through_transformers_in_place(stores, chat_model):
    share_gguf(stores["gguf"], "smol:q4")
    source = resolve("ollama:smol:q4")
    assert source.kind == "gguf" and Path(source.location).stat().st_ino == \
        stores["blob"].stat().st_ino
    manager = ModelManager(model_type="huggingface", model="ollama:smol:q4")
    reply = manager.chat([{"role": "user", "content": "Say hi."}], max_tokens=4,
                         temperature=0.0)
    assert reply.usage.completion_tokens > 0


def test_adam_serve_lists_and_answers_with_a_shared_model(stores, tmp_path):
    import subprocess
    import sys

    from tests.helpers import wait_until
    from tests.integration.conftest import _free_port

    share_gguf(stores["gguf"], "smol:q4")
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "adam_integrations.cli", "serve",
                                "--port", str(port), "--log-level", "warning"],
                               env=dict(os.environ), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(f"{url}/api/version", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(up, 60)
        names = [m["model"] for m in httpx.get(f"{url}/api/tags").json()["models"]]
        assert "smol:q4" in names
        answer = httpx.post(f"{url}/api/chat", timeout=60, json={
            "model": "smol:q4", "stream": False, "options": {"num_predict": 4},
            "messages": [{"role": "user", "content": "hi"}]}).json()
        assert answer["done"] and answer["eval_count"] > 0
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_sharing_twice_reuses_the_blob_and_a_different_model_is_not_overwritten(
        stores, tmp_path):
    assert share_gguf(stores["gguf"], "smol:q4").link == "hardlink"
    assert share_gguf(stores["gguf"], "smol:q4").link == "existing"
    other = tmp_path / "other.gguf"
    other.write_bytes(stores["gguf"].read_bytes()[:-1] + b"\x00")  # same header, new digest
    with pytest.raises(InvalidRequestError, match="different model under this name"):
        share_gguf(other, "smol:q4")


@pytest.mark.parametrize("name", ["../../etc/x", "/abs", "a/b/c/d", "smol:..", "bad name"])
def test_names_that_would_escape_the_store_are_refused(stores, name):
    with pytest.raises(InvalidRequestError, match="not a valid Ollama model name"):
        share_gguf(stores["gguf"], name)
    assert not any((stores["ollama"]).rglob("*.gguf"))


def test_a_corrupt_blob_already_in_the_store_is_reported_not_overwritten(stores):
    blobs = stores["ollama"] / "blobs"
    blobs.mkdir()
    corrupt = blobs / f"sha256-{stores['digest']}"
    corrupt.write_bytes(b"not the model")
    with pytest.raises(AdamError, match="different content"):
        share_gguf(stores["gguf"], "smol:q4")
    assert corrupt.read_bytes() == b"not the model"


def test_the_index_lists_every_store_and_skips_corrupt_manifests(stores):
    share_gguf(stores["gguf"], "smol:q4")
    bad = stores["ollama"] / "manifests/registry.ollama.ai/library/broken/latest"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    index = build_index()
    shared = next(f for f in index.files if "ollama:smol:q4" in f.names)
    assert "hf:acme/smol-GGUF/smol-Q4_1.gguf" in shared.names
    assert shared.stores >= {"huggingface", "ollama"} and shared.format == "gguf"
    assert shared.architecture == "llama" and shared.quantization == "Q4_1"
    assert "llamacpp" in shared.backends and "ollama" in shared.backends
    assert any("corrupt Ollama manifest" in note for note in index.notes)


def test_dedupe_reports_and_links_copies_stored_twice(stores, tmp_path):
    copy_root = tmp_path / "hf" / "models--acme--copy-GGUF"
    (copy_root / "snapshots" / COMMIT).mkdir(parents=True)
    (copy_root / "refs").mkdir()
    (copy_root / "refs" / "main").write_text(COMMIT)
    duplicate = copy_root / "snapshots" / COMMIT / "smol.gguf"
    duplicate.write_bytes(stores["gguf"].read_bytes())
    index = build_index()
    assert index.duplicate_bytes() == duplicate.stat().st_size
    assert dedupe(index) == duplicate.stat().st_size
    assert duplicate.stat().st_ino == stores["blob"].stat().st_ino
    assert build_index().duplicate_bytes() == 0


def test_go_templates_for_known_families_and_a_generic_fallback():
    assert "<|im_start|>" in go_template("<|im_start|>{{ m }}")[0]
    assert "<|start_header_id|>" in go_template("<|start_header_id|>")[0]
    assert go_template("{{ messages }}") == ("{{ .Prompt }}", [])


def test_a_catalog_alias_found_only_in_ollamas_store_loads_its_blob(stores):
    share_gguf(stores["gguf"], "qwen3:0.6b")  # stands in for Ollama's real qwen3:0.6b
    source = resolve("qwen3_small")
    assert source.kind == "gguf" and source.ollama_name == "qwen3:0.6b"
    assert "only in Ollama's store" in source.explanation
