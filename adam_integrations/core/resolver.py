"""The model-reference grammar, and the resolver that turns a reference into a model source.

Every entry point (ModelManager, the CLI, later the framework adapters and the server)
accepts the same model strings:

=============================  ==========================================================
``None`` or ``""``             the default for this machine (today: the embedded models)
``hf:<org>/<repo>``            a Hugging Face hub repository (local cache first)
``<org>/<repo>``               the same, without the prefix
``hf:<org>/<repo>:<quant>``    one GGUF of a GGUF repository, e.g. ``:Q4_K_M``
``hf.co/<org>/<repo>[:<q>]``   the same, as Ollama writes it
``ollama:<name>[:<tag>]``      a model in Ollama's store (its GGUF blob, used in place)
``./dir``, ``/abs/file.gguf``  a local model folder (``config.json``) or GGUF file
``~/models/x.gguf``            (``~`` is expanded)
``qwen3_small`` ...            a catalog alias (see ``catalog.qwen3``)
``smollm2``, ``all-minilm``    the embedded models by name
=============================  ==========================================================

``resolve`` returns a ``ModelSource`` plus a one-line explanation of the choice. Nothing
here touches the network: a GGUF found in the local Hugging Face cache or in Ollama's
store resolves to the file itself (kind ``gguf``), so it is loaded in place; a hub
repository that is not cached stays kind ``hub`` and the backend downloads it.
A repository counts as a GGUF repository when it is named with a quantization, when its
cached snapshot holds GGUF files and no ``config.json``, or when its name ends in
``-GGUF`` (the hub's convention).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from adam_integrations.catalog.embedded import EMBEDDED_CHAT, EMBEDDED_EMBEDDING, find_embedded
from adam_integrations.catalog.qwen3 import find_qwen3
from adam_integrations.core.errors import (
    InvalidInputTypeError,
    InvalidRequestError,
    ModelNotFoundError,
)
from adam_integrations.core.hub import cached_files, cached_snapshot, pick_gguf
from adam_integrations.sharing.gguf_header import is_gguf
from adam_integrations.sharing.ollama_store import OllamaName, find_model_blob

SourceKind = Literal["hub", "folder", "gguf", "ollama"]
Purpose = Literal["chat", "embedding"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

REFERENCE_FORMS = (
    "'hf:<org>/<repo>', '<org>/<repo>', 'ollama:<name>[:<tag>]', a path to a model folder "
    "or a .gguf file, a catalog alias such as 'qwen3_small', or an embedded model "
    "('smollm2', 'all-minilm')"
)


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, after resolution.

    ``location`` is a hub repo id (kind ``hub``), a folder (``folder``), a GGUF file
    path (``gguf``) or an Ollama model name (``ollama``).
    """

    kind: SourceKind
    location: str
    name: str
    explanation: str = ""
    gguf_file: str | None = None
    embedded: bool = False
    quantization: str | None = None
    gguf_repo: bool = False
    ollama_name: str | None = None

    @property
    def is_gguf(self) -> bool:
        """Whether the weights are a GGUF file (on disk, or in a hub GGUF repository)."""
        return self.kind == "gguf" or self.gguf_repo


def resolve(reference: str | None = None, *, purpose: Purpose = "chat") -> ModelSource:
    """Turn a model reference into a ``ModelSource``.

    Example:
        >>> resolve("hf:Qwen/Qwen3-0.6B").location
        'Qwen/Qwen3-0.6B'
        >>> resolve("qwen3_small").kind
        'hub'
    """
    if reference is not None and not isinstance(reference, str):
        if isinstance(reference, os.PathLike):
            reference = os.fspath(reference)
        else:
            raise InvalidInputTypeError(
                f"a model reference must be a string or a path, got {type(reference).__name__}"
            )
    text = (reference or "").strip()
    if not text:
        return _embedded_default(purpose)

    scheme, _, rest = text.partition(":")
    if scheme == "hf" and rest:
        return _hub(rest.strip(), "named with hf:")
    for host in ("hf.co/", "huggingface.co/"):
        if text.startswith(host):
            return _hub(text[len(host):], f"named as Ollama names it ({host}...)")
    if scheme == "ollama" and rest:
        return _ollama(rest.strip())

    if _looks_like_path(text):
        return _local(Path(text).expanduser())

    embedded = find_embedded(text)
    if embedded is not None:
        path = embedded.require_path()
        return _local(path, name=embedded.name, embedded=True,
                      explanation=f"embedded model {embedded.description}")

    qwen3 = find_qwen3(text)
    if qwen3 is not None:
        if cached_snapshot(qwen3.hf_id) is None:  # not in the HF cache: Ollama's store?
            blob = _ollama_blob(qwen3.ollama_tag)
            if blob is not None:
                return ModelSource(
                    "gguf", str(blob), qwen3.ollama_tag,
                    f"catalog alias {qwen3.alias} = {qwen3.hf_id}, on this machine only in "
                    f"Ollama's store as {qwen3.ollama_tag}: its GGUF blob used in place",
                    ollama_name=qwen3.ollama_tag)
        return _hub(qwen3.hf_id, f"catalog alias {qwen3.alias} = {qwen3.hf_id}")

    if _HUB_ID.match(text.split(":")[0]):
        return _hub(text, "")

    raise ModelNotFoundError(
        f"{text!r} is not a model this package knows. Name a model as {REFERENCE_FORMS}."
    )


def _embedded_default(purpose: Purpose) -> ModelSource:
    """The default: for chat, the catalog's pick for this machine when it is on disk
    (``catalog.selection``); else the embedded model, saying what would be picked."""
    pick = ""
    if purpose == "chat":
        from adam_integrations.catalog.selection import default_chat_reference

        reference, pick = default_chat_reference()
        if reference is not None:
            source = resolve(reference)
            return replace(source, explanation=f"no model named; {pick}")
    model = EMBEDDED_CHAT if purpose == "chat" else EMBEDDED_EMBEDDING
    path = model.require_path()
    why = (
        f"no model named; using the embedded default {model.description} "
        f"(offline fallback from the {model.distribution} package)"
    )
    if pick:
        why = f"{why}; {pick}"
    return _local(path, name=model.name, embedded=True, explanation=why)


def _hub(reference: str, how: str) -> ModelSource:
    """A hub reference, ``<org>/<repo>[:<quantization>]``: the cached GGUF file when the
    repository is a GGUF repository in the local cache, else the repository."""
    repo_id, _, quantization = reference.strip().partition(":")
    if not _HUB_ID.match(repo_id):
        raise ModelNotFoundError(
            f"{repo_id!r} is not a Hugging Face repo id; write it as '<org>/<repo>', "
            "e.g. 'hf:Qwen/Qwen3-0.6B' or 'hf:Qwen/Qwen3-8B-GGUF:Q4_K_M'"
        )
    where = f"Hugging Face repo {repo_id}" + (f" ({how})" if how else "")
    name = f"{repo_id}:{quantization}" if quantization else repo_id
    snapshot = cached_snapshot(repo_id)
    files = cached_files(snapshot) if snapshot is not None else []
    has_config = "config.json" in files
    gguf_repo = bool(quantization) or (not has_config and any(
        f.lower().endswith(".gguf") for f in files)) or (
        not has_config and repo_id.lower().endswith("-gguf"))
    if gguf_repo and snapshot is not None:
        try:
            chosen = pick_gguf(files, quantization or None, repo_id)
        except ModelNotFoundError:
            chosen = None
        if chosen is not None:
            return ModelSource("gguf", str(snapshot / chosen), name,
                               f"{where}: {chosen} from the local cache, used in place",
                               quantization=quantization or None)
    return ModelSource("hub", repo_id, name, where, quantization=quantization or None,
                       gguf_repo=gguf_repo)


def _ollama_blob(name: str) -> Path | None:
    try:
        return find_model_blob(name)
    except (ModelNotFoundError, InvalidRequestError):
        return None  # a corrupt manifest: as if the store did not have it


def _ollama(name: str) -> ModelSource:
    """A model in Ollama's store: its GGUF blob, used in place; kind ``ollama`` (for the
    Ollama backend) when no local store holds it."""
    parsed = OllamaName.parse(name)
    blob = find_model_blob(name)
    if blob is not None:
        return ModelSource("gguf", str(blob), str(parsed),
                           f"Ollama model {parsed}: its GGUF blob {blob.name} in Ollama's "
                           "store, used in place", ollama_name=str(parsed))
    return ModelSource("ollama", str(parsed), str(parsed),
                       f"Ollama model {parsed} (not in a local Ollama store)",
                       ollama_name=str(parsed))


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith(("/", "./", "../", "~", ".\\"))
        or text.lower().endswith(".gguf")
        or os.path.exists(text)
    )


def _local(
    path: Path, *, name: str | None = None, embedded: bool = False, explanation: str = ""
) -> ModelSource:
    if not path.exists():
        raise ModelNotFoundError(
            f"model path {str(path)!r} does not exist; check the spelling, or name a hub "
            "model as 'hf:<org>/<repo>'"
        )
    path = path.resolve()
    if path.is_file():
        if not is_gguf(path):
            raise ModelNotFoundError(
                f"{str(path)!r} is not a GGUF file (it does not start with the GGUF magic "
                "bytes); point to a .gguf file or to a folder with config.json"
            )
        return ModelSource("gguf", str(path), name or path.stem,
                           explanation or f"local GGUF file {path}", embedded=embedded)
    if (path / "config.json").exists():
        return ModelSource("folder", str(path), name or path.name,
                           explanation or f"local model folder {path}", embedded=embedded)
    ggufs = sorted(p for p in path.glob("*.gguf") if p.is_file())
    if len(ggufs) == 1:
        return _local(ggufs[0], name=name, embedded=embedded, explanation=explanation)
    if len(ggufs) > 1:
        listing = ", ".join(p.name for p in ggufs)
        raise ModelNotFoundError(
            f"{str(path)!r} holds several GGUF files ({listing}); name the one to load"
        )
    raise ModelNotFoundError(
        f"{str(path)!r} holds no model: expected a config.json (transformers folder) or "
        "a .gguf file"
    )
