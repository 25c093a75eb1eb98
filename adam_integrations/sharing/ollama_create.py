"""Creating a model in Ollama's store, as ``ollama create`` does: a GGUF (an existing
model's, or one uploaded as a blob) with a system prompt, template, parameters, example
messages and license. What ``/api/create`` and ``adam create -f Modelfile`` both run.

A model created from a model already in the store inherits its layers, and what the
request gives replaces them (as Ollama does). The model blob is linked, never copied
(``ollama_share.write_model``); a model of the same name that adam made is replaced, as
Ollama's create replaces it, and its blobs are kept; one that anyone else put there
(``ollama pull``) is refused unless ``overwrite`` is asked for.

The chat template every later request will run (the one given, else the GGUF's own) is
rendered once over sample conversations first (``core.chat_template``), as Ollama checks
a template when a model is created: one that does not compile, runs too long, builds too
much text or recurses without end is refused then, before anything is written.

Two things are stored for Ollama that ``adam serve`` itself does not act on, and each is
said in a status line rather than dropped silently: an Ollama Go template (``adam serve``
answers with the model's Jinja chat template; give a Jinja template to change that one)
and Ollama's runner options that have no counterpart here (``num_ctx``, ``num_gpu``...).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from adam_integrations.core.atomic import partial_file, sweep_stale_partials
from adam_integrations.core.chat_template import TemplateLimits, check_chat_template
from adam_integrations.core.errors import (
    AdamError,
    AlreadyExistsError,
    InvalidInputTypeError,
    InvalidRequestError,
    ModelNotFoundError,
    StorageFullError,
    TooLargeError,
    UnknownOptionError,
)
from adam_integrations.core.registry import did_you_mean
from adam_integrations.core.stores.gguf_header import read_gguf_header
from adam_integrations.core.stores.ollama_parameters import (
    OPTIONS,
    RUNNER_OPTION_TYPES,
    option_fields,
)
from adam_integrations.core.stores.ollama_store import ModelLayers
from adam_integrations.core.types import ChatMessage, GenerationConfig
from adam_integrations.sharing.adapter_gguf import adapter_for_gguf
from adam_integrations.sharing.ollama_share import (
    ModelSpec,
    ShareResult,
    made_by_adam,
    write_model,
)

CREATE_LIMITS = TemplateLimits(max_chars=1_000_000, seconds=2.0)
"""What a chat template may take on the sample conversations when a model is created
(``core.chat_template.check_chat_template``): a real one takes a millisecond and a few
thousand characters."""

RUNNER_OPTIONS = frozenset(RUNNER_OPTION_TYPES)
"""Ollama's options (its Modelfile PARAMETERs) that ``adam serve`` keeps for Ollama but
does not use: the runner's own settings, and samplers llama.cpp dropped."""


def create_model(name: str, gguf: str | Path, *, inherited: ModelLayers | None = None,
                 system: str | None = None, template: str | None = None,
                 parameters: Mapping[str, Any] | None = None,
                 messages: Sequence[Any] | None = None, license: str | Sequence[str] | None
                 = None, adapters: Sequence[str | Path] = (), overwrite: bool = False,
                 report: Callable[[str], None] = lambda status: None) -> ShareResult:
    """Create (or replace) the model ``name`` from the GGUF ``gguf``; ``inherited``: the
    layers of the model it is made from, which the other arguments override, and whose
    adapters ``adapters`` (LoRA: GGUF adapter files or PEFT folders, converted and checked
    against ``gguf`` first) add to. A model of that name that adam did not make is refused
    (AlreadyExistsError) unless ``overwrite``."""
    base = inherited or ModelLayers()
    header = read_gguf_header(gguf)
    added = [adapter_for_gguf(adapter, header, gguf) for adapter in adapters]
    for adapter in added:
        report(f"adapter {adapter.name}: a LoRA adapter for this {header.architecture} model")
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
    own_template = header.metadata.get("tokenizer.chat_template")
    if chat_template or isinstance(own_template, str):  # run by every later request
        check_chat_template(chat_template or str(own_template), limits=CREATE_LIMITS)
    spec = ModelSpec(
        system=system if system is not None else base.system,
        template=go_template, chat_template=chat_template,
        parameters=merged or None,
        messages=_checked_messages(messages) if messages is not None else base.messages,
        license=_license(license) if license is not None else base.license,
        adapters=[*base.adapters, *added] or None, created=True)
    report("gathering model components")
    return write_model(gguf, name, spec, replace=True, overwrite=overwrite, report=report)


def _checked_parameters(parameters: Mapping[str, Any], report: Callable[[str], None]
                        ) -> dict[str, Any]:
    """The parameters checked as a request's options are (``wire.ollama.option_fields``,
    then ``GenerationConfig``'s bounds), so a stored model never holds one that every
    later request would fail on."""
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
    try:
        GenerationConfig(**option_fields(parameters, what="parameter"))
    except (InvalidRequestError, InvalidInputTypeError) as error:
        raise InvalidRequestError(f"{error} (in the model's parameters)",
                                  param="parameters") from None
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
    from adam_integrations.core.stores.ollama_store import OllamaName, ollama_store_roots

    parsed = OllamaName.parse(name)
    for store in [root] if root else ollama_store_roots():
        manifest = (store / "manifests" / parsed.host / parsed.namespace / parsed.model
                    / parsed.tag)
        if not manifest.is_file():
            continue
        if not made_by_adam(manifest, store):
            raise InvalidRequestError(
                f"{name!r} was not created by adam (adam create or /api/create), so it is "
                "left as it is; remove it with `ollama rm`")
        manifest.unlink()
        return
    raise ModelNotFoundError(f'model "{name}" not found')


UPLOAD_SPACE_CHECK = 64 * 1024 * 1024
"""Bytes written between two looks at the free space left on the store's disk."""


class BlobUpload:
    """One blob being uploaded (``POST /api/blobs/sha256:<hex>``): written to a temporary
    file in the store's blobs folder (``core.atomic.partial_file``: one a crash leaves is
    swept by the next upload, or when ``adam serve`` starts) and hashed as it comes;
    ``finish`` renames it into place only when its sha256 is the one it was sent under,
    and otherwise removes it. An upload larger than ``max_bytes`` is a TooLargeError (a
    413), one that would leave less than ``min_free`` bytes on the disk a
    StorageFullError (a 507), both before the disk fills; nothing of it is kept.

    Example:
        >>> import hashlib, tempfile
        >>> store = Path(tempfile.mkdtemp())
        >>> upload = BlobUpload(hashlib.sha256(b"weights").hexdigest(), store)
        >>> upload.write(b"weights"); upload.finish().name.startswith("sha256-")
        True
    """

    def __init__(self, digest: str, store: Path, *, max_bytes: int | None = None,
                 min_free: int = 0, declared: int | None = None) -> None:
        import hashlib

        self.digest = digest
        self.path = store / "blobs" / f"sha256-{digest}"
        self.max_bytes = max_bytes
        self.min_free = min_free
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_dir():
            raise AlreadyExistsError(
                f"the model store has a folder where the blob {self.path.name} belongs "
                "(blobs/ holds files only); remove that folder, then upload again")
        if declared is not None:
            self._check_room(declared)
        sweep_stale_partials(self.path.parent)
        self._temporary = partial_file(self.path)
        self._file = open(self._temporary, "wb")  # noqa: SIM115  (closed by finish/abandon)
        self._hash = hashlib.sha256()
        self.size = 0
        self._unchecked = 0

    def write(self, data: bytes) -> None:
        """Hash and write the next piece (the limits checked before it is written)."""
        self.size += len(data)
        self._unchecked += len(data)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise self._too_large()
        if self._unchecked >= UPLOAD_SPACE_CHECK:
            self._unchecked = 0
            self._check_room(0)
        self._hash.update(data)
        try:
            self._file.write(data)
        except OSError as error:
            raise self._storage_error(error) from error

    def finish(self) -> Path:
        """The blob, in place; InvalidRequestError (and nothing kept) on a mismatch."""
        try:
            self._file.close()
        except OSError as error:
            raise self._storage_error(error) from error
        actual = self._hash.hexdigest()
        if actual != self.digest:
            raise InvalidRequestError(
                f"digest mismatch: the body has sha256:{actual}, not the sha256:{self.digest} "
                "it was sent under; upload the file again")
        os.chmod(self._temporary, 0o644)
        try:
            os.replace(self._temporary, self.path)
        except IsADirectoryError:
            raise AlreadyExistsError(
                f"a folder appeared where the blob {self.path.name} belongs; remove it, then "
                "upload again") from None
        return self.path

    def abandon(self) -> None:
        """The upload broke off or failed: remove what was written (quick: safe to call
        from the event loop)."""
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self._temporary.unlink(missing_ok=True)

    def _check_room(self, coming: int) -> None:
        if self.max_bytes is not None and coming > self.max_bytes:
            raise self._too_large(coming)
        stats = os.statvfs(self.path.parent)
        free = stats.f_bavail * stats.f_frsize
        if free - coming < self.min_free:
            raise StorageFullError(
                f"not enough room for the upload: {free / 1024**3:.1f} GiB free on the model "
                f"store's disk, {coming / 1024**3:.1f} GiB more to come, and "
                f"{self.min_free / 1024**3:.1f} GiB are kept free (adam serve "
                "--min-free-gb); free some space, or upload to a server with room")

    def _too_large(self, size: int | None = None) -> TooLargeError:
        return TooLargeError(
            f"the upload is larger than the limit of {self.max_bytes:,} bytes "
            f"({(size or self.size):,} sent or announced); adam serve --max-upload-gb "
            "raises it")

    def _storage_error(self, error: OSError) -> AdamError:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFullError(f"the model store's disk is full ({error.strerror}); "
                                    "free some space, then upload again")
        return AdamError(f"cannot write the upload into the model store: {error.strerror}")


def blob_written_by(write: Callable[[Path], None]) -> Path:
    """A new blob of Ollama's store, named by its sha256 as the store names blobs, whose
    content ``write`` puts into the path it is given (a temporary file in the blobs
    folder, ``core.atomic.partial_file``: a failed or interrupted ``write`` leaves nothing
    behind, and one killed outright is swept by the next)."""
    from adam_integrations.core.stores.ollama_store import ollama_store_roots
    from adam_integrations.sharing.digest import file_sha256

    blobs = ollama_store_roots()[0] / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    sweep_stale_partials(blobs)
    made = partial_file(blobs / "new-blob")
    try:
        write(made)
        blob = blobs / f"sha256-{file_sha256(made)}"
        os.chmod(made, 0o644)  # Ollama, another user's process, reads it
        os.replace(made, blob)
        return blob
    finally:
        with contextlib.suppress(OSError):
            made.unlink(missing_ok=True)
