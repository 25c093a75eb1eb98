"""One index over every model file on this machine: the Hugging Face cache, Ollama's store
and the bundled model packages.

Each weight file (GGUF, or safetensors) is listed once, with its sha256 (cached by path,
inode, size and mtime, so a large file is hashed once; ``verify=True`` reads every file
again), size, format, architecture, quantization, context length, every name the stores
know it by, and which backends can run it. A broken file is listed too, with what is
wrong (``problem``): a GGUF or safetensors header that cannot be read, a file cut short,
content that does not match the digest it is named after, a store entry whose link
points at a file that is gone. A store that cannot be read, or a corrupt manifest,
becomes a note, never an error.

Files with the same sha256 but different inodes are stored twice; ``dedupe`` replaces the
extra copies with hardlinks, but only copies the stores own, linked to each other (the
blobs of the Hugging Face cache and of Ollama's store: never a user's file that a store
links to, nor a package's, whose in-place edit would then change the store), and only
where both files have the same owner and permissions (a hardlink shares them). Each
replacement is verified first and atomic.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from adam_integrations.catalog.embedded import EMBEDDED_MODELS
from adam_integrations.core.atomic import partial_file, sweep_stale_partials
from adam_integrations.core.errors import AdamError
from adam_integrations.core.stores.gguf_header import is_gguf
from adam_integrations.core.stores.hub import cache_root
from adam_integrations.core.stores.ollama_store import MODEL_MEDIA_TYPE, ollama_store_roots
from adam_integrations.core.stores.weight_files import describe_weights
from adam_integrations.sharing.digest import digest_mismatch, file_sha256, named_digest
from adam_integrations.sharing.ollama_share import copy_exclusively


@dataclass
class StoredFile:
    """One weight file and everything known about it."""

    path: Path
    size: int
    format: str
    sha256: str = ""
    architecture: str | None = None
    quantization: str | None = None
    context_length: int | None = None
    size_label: str | None = None  # parameters, as the file states them ("8B", "135M")
    names: list[str] = field(default_factory=list)
    stores: set[str] = field(default_factory=set)
    owned: bool = False  # a blob a store owns (dedupe may replace it), not a user's file
    named_sha256: str | None = None  # the digest a store names it by (a blob, or a link to it)
    problem: str | None = None  # what is wrong with the file, when something is

    @property
    def inode(self) -> tuple[int, int]:
        stat = self.path.stat()
        return stat.st_dev, stat.st_ino

    @property
    def backends(self) -> list[str]:
        if self.problem:
            return []
        if self.format == "gguf":
            return ["llamacpp", "huggingface", *(["ollama"] if "ollama" in self.stores else [])]
        return ["huggingface"]


@dataclass
class ModelIndex:
    files: list[StoredFile]
    notes: list[str]

    def duplicates(self) -> list[list[StoredFile]]:
        """Groups of files with the same content on different inodes of one file system
        (the copies a hardlink can replace)."""
        by_digest: dict[tuple[str, int], list[StoredFile]] = defaultdict(list)
        for stored in self.files:
            if stored.sha256 and not stored.problem:
                by_digest[(stored.sha256, stored.inode[0])].append(stored)
        groups = []
        for group in by_digest.values():
            if len({f.inode for f in group}) > 1:
                groups.append(group)
        return groups

    def duplicate_bytes(self) -> int:
        total = 0
        for group in self.duplicates():
            inodes = {f.inode: f.size for f in group}
            total += sum(inodes.values()) - max(inodes.values())
        return total


def build_index(hf_cache: Path | None = None, ollama_roots: list[Path] | None = None,
                *, verify: bool = False) -> ModelIndex:
    """Scan the stores (no network) and index every weight file; ``verify``: hash every
    file again (not from the cache), so content that changed in place is found."""
    notes: list[str] = []
    found: dict[tuple[int, int], StoredFile] = {}  # by inode: hardlinks are one file
    hf_root = hf_cache or cache_root()
    roots = ollama_roots if ollama_roots is not None else ollama_store_roots()
    owned_folders = [hf_root.resolve(), *((root / "blobs").resolve() for root in roots)]

    def add(path: Path, name: str, store: str) -> None:
        real = path.resolve()
        if not real.is_file():
            if path.is_symlink():
                notes.append(f"{name}: {path} links to {real}, which no longer exists (the "
                             "file was moved or deleted); share or pull it again")
            return
        stat = real.stat()
        stored = found.get((stat.st_dev, stat.st_ino))
        if stored is None:
            stored = StoredFile(real, stat.st_size,
                                "gguf" if real.name.endswith(".gguf") or is_gguf(real)
                                else "safetensors",
                                owned=not real.is_symlink() and any(
                                    real.is_relative_to(folder) for folder in owned_folders))
            found[(stat.st_dev, stat.st_ino)] = stored
        if name not in stored.names:
            stored.names.append(name)
        stored.named_sha256 = stored.named_sha256 or named_digest(path)
        stored.stores.add(store)

    _scan_hf_cache(hf_root, add, notes)
    for root in roots:
        _scan_ollama(root, add, notes)
    for model in EMBEDDED_MODELS:
        path = model.path()
        if path is None:
            continue
        files = [path] if path.is_file() else sorted(path.glob("*.safetensors"))
        for file in files:
            add(file, f"embedded:{model.aliases[-1]}", "embedded")
    for stored in found.values():
        _describe(stored, verify)
    return ModelIndex(sorted(found.values(), key=lambda f: f.names[0]), notes)


def _scan_hf_cache(root: Path, add: object, notes: list[str]) -> None:
    """The Hugging Face cache, read with huggingface_hub's own cache scanner."""
    if not root.is_dir():
        return
    from huggingface_hub import scan_cache_dir

    try:
        info = scan_cache_dir(root)
    except Exception as error:  # an unreadable cache is a note, not a failure
        notes.append(f"could not scan the Hugging Face cache {root}: {error}")
        return
    for warning in info.warnings:
        notes.append(f"Hugging Face cache: {warning}")
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        for revision in repo.revisions:
            for file in revision.files:
                if file.file_name.endswith((".gguf", ".safetensors")):
                    relative = file.file_path.relative_to(revision.snapshot_path)
                    add(file.file_path, f"hf:{repo.repo_id}/{relative}",  # type: ignore[operator]
                        "huggingface")


def _scan_ollama(root: Path, add: object, notes: list[str]) -> None:
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
        parts = manifest.relative_to(manifests).parts
        if len(parts) != 4:
            continue
        host, namespace, model, tag = parts
        name = (f"{model}:{tag}" if (host, namespace) == ("registry.ollama.ai", "library")
                else f"{host}/{namespace}/{model}:{tag}")
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8"))["layers"]
            digest = next(layer["digest"] for layer in layers
                          if layer.get("mediaType") == MODEL_MEDIA_TYPE)
        except (OSError, ValueError, KeyError, TypeError, StopIteration):
            notes.append(f"skipped a corrupt Ollama manifest: {manifest}")
            continue
        hexdigest = str(digest).removeprefix("sha256:")
        if len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
            notes.append(f"skipped an Ollama manifest with a malformed digest: {manifest}")
            continue
        add(root / "blobs" / f"sha256-{hexdigest}", f"ollama:{name}", "ollama")  # type: ignore[operator]


def _describe(stored: StoredFile, verify: bool) -> None:
    """Hash the file, read its header, and set ``problem`` when something is wrong."""
    try:
        stored.sha256 = file_sha256(stored.path, fresh=verify)
        summary = describe_weights(stored.path)
    except OSError as error:
        stored.problem = f"cannot be read: {error.strerror or error}"
        return
    except AdamError as error:
        stored.problem = str(error).replace(f"{stored.path} ", "", 1)
        return
    if stored.named_sha256 and stored.sha256 != stored.named_sha256:
        stored.problem = digest_mismatch(stored.path, stored.named_sha256, stored.sha256
                                         ).removeprefix(f"{stored.path.name} ")
        return
    stored.architecture = summary.architecture
    stored.context_length = summary.context_length
    if stored.format == "gguf":
        stored.quantization = summary.quantization
        stored.size_label = summary.size_label


def dedupe(index: ModelIndex) -> int:
    """Replace the duplicate copies the stores own with hardlinks to one of them; bytes
    freed. Only store copies are linked together (blobs nobody edits in place). A user's
    file (outside every store, e.g. one a share links to) is never replaced, and never
    becomes the other end of a hardlink either: an edit of it in place would change the
    store's copy too. A store copy that duplicates only a user's file becomes a
    copy-on-write clone of it where the file system makes those (Btrfs, XFS: the blocks are
    shared, an edit of either file leaves the other as it was), and stays a copy
    elsewhere. A copy whose owner or permissions differ from the one kept is left too (a
    hardlink would change them). Each copy left becomes a note on ``index``."""
    freed = 0
    for group in index.duplicates():
        owned = [f for f in group if f.owned]
        for other in (f for f in group if not f.owned):
            index.notes.append(f"{other.path} is not in a store; it was left as it is")
        if not owned:
            continue
        keep = max(owned, key=lambda f: f.path.stat().st_nlink)
        others = [f for f in owned if f.inode != keep.inode]
        if not others and len(owned) < len(group):
            user_file = next(f for f in group if not f.owned)
            if _replace_with(keep, user_file, clone=True):
                freed += keep.size
            else:
                index.notes.append(
                    f"{keep.path} has the same content as {user_file.path}, which is not in "
                    "a store; they stay two copies (a hardlink would let an edit of that file "
                    "change the store's copy, and this file system makes no copy-on-write "
                    "clones)")
            continue
        for other in others:
            kept, replaced = keep.path.stat(), other.path.stat()
            if (kept.st_mode, kept.st_uid, kept.st_gid) != (replaced.st_mode,
                                                            replaced.st_uid, replaced.st_gid):
                index.notes.append(
                    f"{other.path} has another owner or permissions than {keep.path}; a "
                    "hardlink would change them, so it was left as it is")
                continue
            if _replace_with(other, keep, clone=False):
                freed += other.size
    return freed


def _replace_with(copy: StoredFile, original: StoredFile, *, clone: bool) -> bool:
    """Replace the store's ``copy`` by a hardlink to ``original`` (or, with ``clone``, a
    copy-on-write clone of it), once both are read again and hold the same bytes; whether
    it was. Atomic: the copy is whole until the link or clone replaces it."""
    if copy.inode[0] != original.inode[0] or file_sha256(
            copy.path, fresh=True) != file_sha256(original.path, fresh=True):
        return False
    sweep_stale_partials(copy.path.parent)
    temporary = partial_file(copy.path)
    try:
        temporary.unlink()  # the name is ours; the link or clone below creates it exclusively
        if clone:
            try:
                copy_exclusively(original.path, temporary, reflink=True)
            except OSError:
                return False
            os.chmod(temporary, stat.S_IMODE(copy.path.stat().st_mode))
        else:
            os.link(original.path, temporary)
        os.replace(temporary, copy.path)
        return True
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
