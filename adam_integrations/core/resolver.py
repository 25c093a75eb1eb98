"""The model-reference grammar, and the resolver that turns a reference into a model source.

Every entry point (ModelManager, the CLI, later the framework adapters and the server)
accepts the same model strings:

=============================  ==========================================================
``None`` or ``""``             the default for this machine (today: the embedded models)
``hf:<org>/<repo>``            a Hugging Face hub repository (local cache first)
``<org>/<repo>``               the same, without the prefix
``ollama:<name>[:<tag>]``      a model in Ollama's store
``./dir``, ``/abs/file.gguf``  a local model folder (``config.json``) or GGUF file
``~/models/x.gguf``            (``~`` is expanded)
``qwen3_small`` ...            a catalog alias (see ``catalog.qwen3``)
``smollm2``, ``all-minilm``    the embedded models by name
=============================  ==========================================================

``resolve`` returns a ``ModelSource`` plus a one-line explanation of the choice.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from adam_integrations.catalog.embedded import EMBEDDED_CHAT, EMBEDDED_EMBEDDING, find_embedded
from adam_integrations.catalog.qwen3 import find_qwen3
from adam_integrations.core.errors import InvalidInputTypeError, ModelNotFoundError

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
        return _hub(rest.strip(), f"Hugging Face repo {rest.strip()} (named with hf:)")
    if scheme == "ollama" and rest:
        return ModelSource("ollama", rest.strip(), rest.strip(), f"Ollama model {rest.strip()}")

    if _looks_like_path(text):
        return _local(Path(text).expanduser())

    embedded = find_embedded(text)
    if embedded is not None:
        path = embedded.require_path()
        return _local(path, name=embedded.name, embedded=True,
                      explanation=f"embedded model {embedded.description}")

    qwen3 = find_qwen3(text)
    if qwen3 is not None:
        return _hub(qwen3.hf_id, f"catalog alias {qwen3.alias} = {qwen3.hf_id}")

    if _HUB_ID.match(text):
        return _hub(text, f"Hugging Face repo {text}")

    raise ModelNotFoundError(
        f"{text!r} is not a model this package knows. Name a model as {REFERENCE_FORMS}."
    )


def _embedded_default(purpose: Purpose) -> ModelSource:
    model = EMBEDDED_CHAT if purpose == "chat" else EMBEDDED_EMBEDDING
    path = model.require_path()
    why = (
        f"no model named; using the embedded default {model.description} "
        f"(offline fallback from the {model.distribution} package)"
    )
    return _local(path, name=model.name, embedded=True, explanation=why)


def _hub(repo_id: str, explanation: str) -> ModelSource:
    if not _HUB_ID.match(repo_id):
        raise ModelNotFoundError(
            f"{repo_id!r} is not a Hugging Face repo id; write it as '<org>/<repo>', "
            "e.g. 'hf:Qwen/Qwen3-0.6B'"
        )
    return ModelSource("hub", repo_id, repo_id, explanation)


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
        if not _is_gguf(path):
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


def _is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"GGUF"
    except OSError:
        return False
