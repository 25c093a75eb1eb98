"""Creating a model in Ollama's store, as ``ollama create`` does: a GGUF (an existing
model's, or one uploaded as a blob) with a system prompt, template, parameters, example
messages and license. What ``/api/create`` and ``adam create -f Modelfile`` both run.

A model created from a model already in the store inherits its layers, and what the
request gives replaces them (as Ollama does). The model blob is linked, never copied
(``ollama_share.write_model``); a model of the same name is replaced, as Ollama's create
replaces it, and its blobs are kept.

Two things are stored for Ollama that ``adam serve`` itself does not act on, and each is
said in a status line rather than dropped silently: an Ollama Go template (``adam serve``
answers with the model's Jinja chat template; give a Jinja template to change that one)
and Ollama's runner options that have no counterpart here (``num_ctx``, ``num_gpu``...).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from adam_integrations.core.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    UnknownOptionError,
)
from adam_integrations.core.registry import did_you_mean
from adam_integrations.core.stores.ollama_store import ModelLayers
from adam_integrations.core.types import ChatMessage
from adam_integrations.sharing.ollama_share import ModelSpec, ShareResult, write_model
from adam_integrations.wire.ollama import OPTIONS

RUNNER_OPTIONS = frozenset({
    "num_ctx", "num_keep", "num_batch", "num_gpu", "main_gpu", "num_thread", "use_mmap",
    "numa", "low_vram", "repeat_last_n", "typical_p", "tfs_z", "mirostat", "mirostat_eta",
    "mirostat_tau", "penalize_newline"})
"""Ollama's options (its Modelfile PARAMETERs) that ``adam serve`` keeps for Ollama but
does not use: the runner's own settings, and samplers llama.cpp dropped."""


def create_model(name: str, gguf: str | Path, *, inherited: ModelLayers | None = None,
                 system: str | None = None, template: str | None = None,
                 parameters: Mapping[str, Any] | None = None,
                 messages: Sequence[Any] | None = None, license: str | Sequence[str] | None
                 = None, report: Callable[[str], None] = lambda status: None) -> ShareResult:
    """Create (or replace) the model ``name`` from the GGUF ``gguf``; ``inherited``: the
    layers of the model it is made from, which the other arguments override."""
    base = inherited or ModelLayers()
    merged = {**base.parameters, **_checked_parameters(parameters or {}, report)}
    chat_template = base.chat_template
    go_template = base.template
    if template is not None:
        if _is_jinja(template):
            chat_template, go_template = template, None  # Ollama's is derived from it
        else:
            go_template = template
            report("template: kept for Ollama; adam serve answers with the model's Jinja "
                   "chat template (give TEMPLATE as a Jinja template to change it)")
    spec = ModelSpec(
        system=system if system is not None else base.system,
        template=go_template, chat_template=chat_template,
        parameters=merged or None,
        messages=_checked_messages(messages) if messages is not None else base.messages,
        license=_license(license) if license is not None else base.license,
        created=True)
    report("gathering model components")
    return write_model(gguf, name, spec, replace=True, report=report)


def _checked_parameters(parameters: Mapping[str, Any], report: Callable[[str], None]
                        ) -> dict[str, Any]:
    if not isinstance(parameters, Mapping):
        raise InvalidRequestError("parameters must be an object of Ollama options",
                                  param="parameters")
    known = set(OPTIONS) | RUNNER_OPTIONS
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise UnknownOptionError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))}"
            f"{did_you_mean(unknown, known)}; the parameters are Ollama's options "
            f"({', '.join(sorted(OPTIONS))} ...)", param="parameters")
    for key in sorted(set(parameters) & RUNNER_OPTIONS):
        report(f"parameter {key}: kept for Ollama; adam serve does not use it")
    return {key: value for key, value in parameters.items() if value is not None}


def _checked_messages(messages: Sequence[Any]) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidRequestError("messages must be a list of {role, content}",
                                  param="messages")
    return [{"role": m.role, "content": m.content}
            for m in (ChatMessage.coerce(message) for message in messages)]


def _license(license: str | Sequence[str]) -> str:
    texts = [license] if isinstance(license, str) else list(license)
    if not all(isinstance(text, str) for text in texts):
        raise InvalidRequestError("license must be a string or a list of strings",
                                  param="license")
    return "\n\n".join(texts)


def _is_jinja(template: str) -> bool:
    """A Hugging Face (Jinja) chat template, not Ollama's Go template: Jinja statements,
    or messages read without Go's leading dot."""
    return "{%" in template or ("messages" in template and ".Messages" not in template)


def delete_created_model(name: str, root: Path | None = None) -> None:
    """Remove the model ``name`` that ``create_model`` made (its manifest; blobs are kept,
    Ollama prunes the ones nothing uses). A model this package did not create is refused:
    deleting what someone else put in the store is theirs to do (``ollama rm``)."""
    import json

    from adam_integrations.core.stores.ollama_store import OllamaName, ollama_store_roots

    parsed = OllamaName.parse(name)
    for store in [root] if root else ollama_store_roots():
        manifest = (store / "manifests" / parsed.host / parsed.namespace / parsed.model
                    / parsed.tag)
        if not manifest.is_file():
            continue
        try:
            config = json.loads(manifest.read_text(encoding="utf-8"))["config"]["digest"]
            created = json.loads((store / "blobs" / config.replace(":", "-")).read_text(
                encoding="utf-8")).get("adam_created") is True
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            created = False
        if not created:
            raise InvalidRequestError(
                f"{name!r} was not created by adam (adam create or /api/create), so it is "
                "left as it is; remove it with `ollama rm`")
        manifest.unlink()
        return
    raise ModelNotFoundError(f'model "{name}" not found')


class BlobUpload:
    """One blob being uploaded (``POST /api/blobs/sha256:<hex>``): written to a temporary
    file in the store's blobs folder and hashed as it comes; ``finish`` renames it into
    place only when its sha256 is the one it was sent under, and otherwise removes it.

    Example:
        >>> import hashlib, tempfile
        >>> store = Path(tempfile.mkdtemp())
        >>> upload = BlobUpload(hashlib.sha256(b"weights").hexdigest(), store)
        >>> upload.write(b"weights"); upload.finish().name.startswith("sha256-")
        True
    """

    def __init__(self, digest: str, store: Path) -> None:
        import hashlib
        import tempfile

        self.digest = digest
        self.path = store / "blobs" / f"sha256-{digest}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".adam-upload-")
        self._file = os.fdopen(handle, "wb")
        self._temporary = Path(temporary)
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._file.write(data)

    def finish(self) -> Path:
        """The blob, in place; InvalidRequestError (and nothing kept) on a mismatch."""
        self._file.close()
        actual = self._hash.hexdigest()
        if actual != self.digest:
            self._temporary.unlink(missing_ok=True)
            raise InvalidRequestError(
                f"digest mismatch: the body has sha256:{actual}, not the sha256:{self.digest} "
                "it was sent under; upload the file again")
        os.chmod(self._temporary, 0o644)
        os.replace(self._temporary, self.path)
        return self.path

    def abandon(self) -> None:
        """The upload broke off: remove what was written."""
        self._file.close()
        self._temporary.unlink(missing_ok=True)


def blob_written_by(write: Callable[[Path], None]) -> Path:
    """A new blob of Ollama's store, named by its sha256 as the store names blobs, whose
    content ``write`` puts into the path it is given (a temporary name in the blobs
    folder: a failed or interrupted ``write`` leaves nothing behind)."""
    import threading

    from adam_integrations.core.stores.ollama_store import ollama_store_roots
    from adam_integrations.sharing.digest import file_sha256

    blobs = ollama_store_roots()[0] / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    made = blobs / f".adam-blob-{os.getpid()}-{threading.get_ident()}.gguf"
    try:
        write(made)
        blob = blobs / f"sha256-{file_sha256(made)}"
        os.replace(made, blob)
        return blob
    finally:
        made.unlink(missing_ok=True)
