"""Model stores as they are found on real machines: files shared from another file
system, flipped bits, downloads cut short, blobs that are not what their name says,
originals moved after sharing. Nothing a user owns is replaced; every broken file is
listed with what is wrong; the server and the CLI answer in one clear line; a share
repairs what an earlier share left dangling."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adam_integrations import ModelNotFoundError, resolve
from adam_integrations.sharing.digest import file_sha256
from adam_integrations.sharing.index import build_index, dedupe
from adam_integrations.sharing.ollama_share import share_gguf
from tests.helpers import error_message
from tests.integration.conftest import ServeProcess

COMMIT = "0123456789abcdef0123456789abcdef01234567"
FIRST_KEY_LENGTH = 4 + 4 + 8 + 8  # magic, version, tensor count, key count


@pytest.fixture
def other_file_system(tmp_path) -> Iterator[Path]:
    """A folder on another file system than ``tmp_path`` (tmpfs), where one exists."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system here (/dev/shm)")
    folder = Path(os.path.realpath(shm)) / f"adam-test-{os.getpid()}-{tmp_path.name}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "hf"
    root.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    return root


def _hf_file(root: Path, repo: str, name: str, content: bytes, *, as_blob: bool = True
             ) -> Path:
    """A file in a Hugging Face cache layout: a blob named by its sha256 and a snapshot
    link to it (as a download leaves it), or a plain file in the snapshot."""
    folder = root / f"models--acme--{repo}"
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(COMMIT)
    if not as_blob:
        (snapshot / name).write_bytes(content)
        return snapshot / name
    import hashlib

    blob = folder / "blobs" / hashlib.sha256(content).hexdigest()
    blob.parent.mkdir(exist_ok=True)
    blob.write_bytes(content)
    blob.chmod(0o644)
    (snapshot / name).symlink_to(Path("../..") / "blobs" / blob.name)
    return blob


def _broken(index, name_part: str) -> str:
    [found] = [f for f in index.files if any(name_part in n for n in f.names)]
    assert found.problem, f"{found.names} is not listed as broken"
    assert found.backends == []
    return found.problem


def _adam(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "adam_integrations.cli", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_dedupe_never_links_a_store_copy_to_a_users_file(
        tmp_path, hf_cache, other_file_system, monkeypatch, chat_gguf_path):
    """The user's GGUF is on the Hugging Face cache's file system, Ollama's store on
    another one, so sharing stores a symlink; an identical HF blob sits beside the user's
    file. Dedupe must leave the user's file alone (same inode, same 0600 mode) and never
    make the store's blob a hardlink of it, whatever the permissions: an edit of the
    user's file in place would then change the store's copy."""
    content = chat_gguf_path.read_bytes() + b"\0" * 32  # not the embedded package's file
    user_file = tmp_path / "mine" / "model.gguf"
    user_file.parent.mkdir()
    user_file.write_bytes(content)
    user_file.chmod(0o600)
    before = user_file.stat()
    blob = _hf_file(hf_cache, "smol-GGUF", "smol-Q4_1.gguf", content)
    monkeypatch.setenv("OLLAMA_MODELS", str(other_file_system / "ollama"))
    assert share_gguf(user_file, "mine:latest").link == "symlink"

    user_file.chmod(0o644)  # the same permissions as the blob: a hardlink was made here
    index = build_index()
    assert index.duplicate_bytes() == len(content)  # reported ...
    freed = dedupe(index)  # ... but at most a copy-on-write clone, never a hardlink
    after = user_file.stat()
    assert (after.st_ino, stat.S_IMODE(after.st_mode)) == (before.st_ino, 0o644)
    assert blob.stat().st_ino != after.st_ino and blob.stat().st_nlink == 1
    if freed == 0:  # this file system makes no clones (ext4, overlayfs): a note says so
        assert any("copy-on-write" in note for note in index.notes), index.notes

    with user_file.open("r+b") as edited:  # the user edits their file in place
        edited.seek(len(content) - 8)
        edited.write(b"EDITED!!")
    assert blob.read_bytes() == content  # the store's copy is as it was
    assert file_sha256(blob, fresh=True) == blob.name


def test_broken_files_are_listed_with_what_is_wrong(tmp_path, hf_cache, monkeypatch,
                                                    chat_gguf_path):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    content = bytearray(chat_gguf_path.read_bytes())
    flipped = bytearray(content)
    flipped[FIRST_KEY_LENGTH + 7] ^= 0x10  # the first key's length: 2**60 bytes
    _hf_file(hf_cache, "flipped-GGUF", "flipped.gguf", bytes(flipped))
    _hf_file(hf_cache, "cut-GGUF", "cut.gguf", bytes(content[: len(content) // 2]))
    _hf_file(hf_cache, "empty", "model.safetensors", b"", as_blob=False)
    _hf_file(hf_cache, "text", "model.safetensors", b"version https://git-lfs\n",
             as_blob=False)

    index = build_index()
    assert "corrupt" in _broken(index, "flipped.gguf")
    assert "truncated" in _broken(index, "cut.gguf")
    assert "not a safetensors file" in _broken(index, "acme/empty/")
    assert "not a safetensors file" in _broken(index, "acme/text/")

    listed = _adam("models", env={"HF_HUB_CACHE": str(hf_cache)})
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert listed.stdout.count("BROKEN:") == 4, listed.stdout
    shown = _adam("show", f"{hf_cache}/models--acme--flipped-GGUF/snapshots/{COMMIT}/"
                  "flipped.gguf", env={"HF_HUB_CACHE": str(hf_cache)})
    assert shown.returncode == 1 and "Traceback" not in shown.stderr
    assert shown.stderr.startswith("Error:") and "corrupt" in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1


@pytest.fixture
def damaged_store(tmp_path, chat_gguf_path, monkeypatch) -> dict[str, Path]:
    """An Ollama store with a model whose blob was changed in place after sharing (its
    size and mtime kept, as a disk error would), and one whose header is corrupt."""
    store = tmp_path / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    source = tmp_path / "private.gguf"
    shutil.copyfile(chat_gguf_path, source)
    result = share_gguf(source, "changed:latest")
    file_sha256(result.blob)  # hashed (and cached) while it was right
    before = result.blob.stat()
    with result.blob.open("r+b") as handle:
        handle.seek(before.st_size - 100)  # tensor data, not the header
        byte = handle.read(1)
        handle.seek(before.st_size - 100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(result.blob, ns=(before.st_atime_ns, before.st_mtime_ns))
    flipped = bytearray(chat_gguf_path.read_bytes())
    flipped[FIRST_KEY_LENGTH + 7] ^= 0x10
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(bytes(flipped))
    share_gguf_unchecked(corrupt, store, "corrupt:latest")
    return {"store": store, "changed": result.blob}


def share_gguf_unchecked(gguf: Path, store: Path, name: str) -> None:
    """A model in Ollama's store whose blob is the (unreadable) file ``gguf``, as a pull
    that went wrong leaves it: share refuses such a file, so the manifest is written here."""
    import hashlib
    import json

    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    (store / "blobs").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(gguf, store / "blobs" / f"sha256-{digest}")
    model, tag = name.split(":")
    manifest = store / "manifests" / "registry.ollama.ai" / "library" / model / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [{
        "mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
        "size": gguf.stat().st_size}]}))


def test_a_blob_that_does_not_match_its_digest_is_found_and_never_served(
        damaged_store, session_cache):
    env = {"OLLAMA_MODELS": str(damaged_store["store"])}
    quick = build_index()  # the cached hash still says it is fine
    assert not next(f for f in quick.files if "ollama:changed:latest" in f.names).problem
    verified = build_index(verify=True)
    assert "is corrupt: its content has sha256" in _broken(verified, "ollama:changed:latest")
    listed = _adam("models", "--verify", env=env)
    assert listed.returncode == 1 and "2 broken" in listed.stdout, listed.stdout

    running = ServeProcess(session_cache / "damaged-server.log", env=env)
    try:
        for name, why in (("changed:latest", "is corrupt: its content"),
                          ("corrupt:latest", "is truncated or corrupt")):
            for path, body in (("/api/chat", {"messages": [{"role": "user", "content": "hi"}],
                                              "stream": False}),
                               ("/api/show", {}),
                               ("/v1/chat/completions", {
                                   "messages": [{"role": "user", "content": "hi"}]})):
                response = httpx.post(f"{running.url}{path}", timeout=60,
                                      json={"model": name, **body})
                assert response.status_code == 422, (path, response.text)
                assert why in error_message(response)
        tags = httpx.get(f"{running.url}/api/tags", timeout=60)
        assert tags.status_code == 200
    finally:
        assert running.stop() == 0


def test_sharing_again_after_the_original_moved_repairs_the_link(
        tmp_path, other_file_system, monkeypatch, chat_gguf_path):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    original = other_file_system / "model.gguf"
    shutil.copyfile(chat_gguf_path, original)
    first = share_gguf(original, "moved:latest")
    assert first.link == "symlink"
    moved = other_file_system / "elsewhere.gguf"
    original.rename(moved)

    with pytest.raises(ModelNotFoundError, match=r"no longer exists.*adam share"):
        resolve("ollama:moved:latest")
    assert any("no longer exists" in note for note in build_index().notes)

    again = share_gguf(moved, "moved:latest")
    assert str(original) in again.repaired and str(moved) in again.repaired
    assert Path(resolve("ollama:moved:latest").location).resolve() == moved


def test_a_blob_linked_across_file_systems_is_held_to_its_own_digest(
        tmp_path, other_file_system, monkeypatch, chat_gguf_path, session_cache):
    """A share across file systems stores a symlink: the digest is the link's name, not
    the file's, so a change to the user's file is found by --verify and refused by the
    server (the digest was once compared after resolving the link, and never failed)."""
    user_file = tmp_path / "mine.gguf"
    shutil.copyfile(chat_gguf_path, user_file)
    store = other_file_system / "ollama"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    shared = share_gguf(user_file, "linked:latest")
    assert shared.link == "symlink" and shared.blob.is_symlink()
    assert not next(f for f in build_index(verify=True).files
                    if "ollama:linked:latest" in f.names).problem
    before = user_file.stat()
    with user_file.open("r+b") as handle:  # the user's file changes, size and mtime kept
        handle.seek(before.st_size - 100)
        handle.write(b"\xff" * 8)
    os.utime(user_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    verified = build_index(verify=True)
    assert "is corrupt: its content has sha256" in _broken(verified, "ollama:linked:latest")
    listed = _adam("models", "--verify", env={"OLLAMA_MODELS": str(store)})
    assert listed.returncode == 1 and "BROKEN: is corrupt" in listed.stdout, listed.stdout
    running = ServeProcess(session_cache / "linked-server.log",
                           env={"OLLAMA_MODELS": str(store)})
    try:
        response = httpx.post(f"{running.url}/api/chat", timeout=60, json={
            "model": "linked", "stream": False,
            "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 422 and "is corrupt" in error_message(response)
        assert str(store) not in response.text  # no folder of the server's is named
    finally:
        assert running.stop() == 0


def test_a_killed_dedupe_leaves_nothing_that_stops_the_next(tmp_path, hf_cache,
                                                             chat_gguf_path):
    """A dedupe killed between its link and its rename left a temporary file of a fixed
    name, and every later --link failed on it. Temporary names are random now, and a
    killed run's are swept."""
    content = chat_gguf_path.read_bytes() + b"\0" * 16
    first = _hf_file(hf_cache, "one-GGUF", "one.gguf", content)
    second = _hf_file(hf_cache, "two-GGUF", "two.gguf", content)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    for blob in (first, second):
        (blob.parent / f".{blob.name}.adam-link").write_bytes(b"the old fixed name")
        (blob.parent / f".{blob.name}.partial-{dead}-abcdef").write_bytes(b"killed")
    inodes = {blob: blob.stat().st_ino for blob in (first, second)}
    index = build_index()
    assert dedupe(index) == len(content)
    assert first.stat().st_ino == second.stat().st_ino
    [replaced] = [blob for blob in (first, second) if blob.stat().st_ino != inodes[blob]]
    assert not list(replaced.parent.glob(".*.partial-*"))  # swept where it wrote
