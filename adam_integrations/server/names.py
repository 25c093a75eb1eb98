"""Which model names ``adam serve`` accepts from a request, checked before anything is
looked up (a bad name is a 400, never a file opened or a path listed).

A name is one of:

- an Ollama model name, ``[[host/]namespace/]model[:tag]`` by Ollama's rules
  (``core.stores.ollama_store.OLLAMA_NAME_PATTERN``, the store's own grammar):
  ``smollm2:135m``, ``qwen3_small``, ``hf.co/Qwen/Qwen3-8B-GGUF:Q4_K_M``,
  ``Qwen/Qwen3-0.6B``;
- ``hf:<org>/<repo>[:<quantization>]`` or ``ollama:<Ollama name>``;
- a path to a model file or folder, only under a folder the operator named with
  ``adam serve --models-dir DIR`` (the path is resolved, symlinks included, and must stay
  inside it). Without ``--models-dir`` no path is served.

``..`` is refused anywhere, and so are control characters and names over
``MAX_NAME_LENGTH`` characters.

Example:
    >>> check_model_name("smollm2:135m")
    'smollm2:135m'
    >>> check_alias("../../x")
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: '../../x' is not a valid model name: ...
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.stores.ollama_store import OLLAMA_NAME_PATTERN

MAX_NAME_LENGTH = 512

_OLLAMA_NAME = OLLAMA_NAME_PATTERN  # the store's own grammar (core.stores.ollama_store)
_PART = r"[A-Za-z0-9_](?:\.?[A-Za-z0-9_-]){0,39}\.?"
_HUB_REFERENCE = (r"[A-Za-z0-9](?:\.?[A-Za-z0-9_-]){0,47}/[A-Za-z0-9_-](?:\.?[A-Za-z0-9_-]){0,47}"
                  rf"\.?(?::{_PART})?")
OLLAMA_NAME = re.compile(_OLLAMA_NAME)
HUB_REFERENCE = re.compile(_HUB_REFERENCE)
ALIAS_PATTERN = rf"^{_OLLAMA_NAME}$"
"""The names ``/api/copy`` may create, as one regex."""
NAME_PATTERN = rf"^(?:hf:{_HUB_REFERENCE}|ollama:{_OLLAMA_NAME}|(?!hf:|ollama:){_OLLAMA_NAME})$"
"""Every name a request may use but paths, as one regex (ASCII only; in JSON Schema's
dialect too): what ``/openapi.json`` publishes for ``model``."""
_PATH_START = re.compile(r"^(?:[/.~\\]|[A-Za-z]:[\\/])")
PATH_PATTERN = r"^(?:[/.~\\]|[A-Za-z]:[\\/]).*$|^.*\\.*$|^.*\.[Gg][Gg][Uu][Ff]$"
"""What a request's model name must look like to be read as a path (``_is_path``), as one
regex: served only under ``--models-dir``."""

NAME_FORMS = ("write it as 'model', 'model:tag', 'namespace/model:tag', "
              "'hf:<org>/<repo>' or 'ollama:<name>'")


def check_model_name(name: object, model_dirs: Sequence[Path] = ()) -> str:
    """The name, stripped, if a request may use it; InvalidRequestError (a 400) if not.

    A path is returned resolved (``model_dirs`` are the folders paths may point into).
    """
    text = _text(name)
    if _is_path(text):
        return _allowed_path(text, model_dirs)
    scheme, _, rest = text.partition(":")
    if scheme == "hf" and rest:
        if HUB_REFERENCE.fullmatch(rest):
            return text
        raise _invalid(text, "write a Hugging Face model as 'hf:<org>/<repo>[:<quant>]'")
    if scheme == "ollama" and rest:
        return "ollama:" + check_alias(rest)
    return check_alias(text)


def check_alias(name: object) -> str:
    """An Ollama model name (no prefix, no path): what ``/api/copy`` may create."""
    text = _text(name)
    if not OLLAMA_NAME.fullmatch(text) or ".." in text:
        raise _invalid(text, NAME_FORMS)
    return text


def canonical_name(name: str) -> str:
    """A name as Ollama writes it in every listing and answer: ``name:tag``, with
    ``:latest`` when the request gave no tag (``hf:``, ``ollama:`` and paths as given).

    Example:
        >>> canonical_name("llama3.1"), canonical_name("hf.co/Qwen/Qwen3-8B-GGUF:Q4_K_M")
        ('llama3.1:latest', 'hf.co/Qwen/Qwen3-8B-GGUF:Q4_K_M')
        >>> canonical_name("localhost:5000/team/model"), canonical_name("hf:Qwen/Qwen3-0.6B")
        ('localhost:5000/team/model:latest', 'hf:Qwen/Qwen3-0.6B')
    """
    text = name.strip()
    if _is_path(text) or text.startswith(("hf:", "ollama:")):
        return text
    return text if ":" in text.rsplit("/", 1)[-1] else f"{text}:latest"


def is_path_reference(name: str) -> bool:
    """Whether ``name`` (as ``check_model_name`` returned it) is a path on this machine."""
    return _is_path(name)


def _text(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequestError("model is required: name the model to use, "
                                  "e.g. \"model\": \"smollm2:135m\"")
    text = name.strip()
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidRequestError(f"model name too long ({len(text)} characters; at most "
                                  f"{MAX_NAME_LENGTH})")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidRequestError("model name contains control characters")
    return text


def _is_path(text: str) -> bool:
    return bool(_PATH_START.match(text)) or "\\" in text or text.lower().endswith(".gguf")


def _allowed_path(text: str, model_dirs: Sequence[Path]) -> str:
    if not model_dirs:
        raise InvalidRequestError(
            f"{text!r}: adam serve does not serve paths unless told to; name a model (see "
            "/api/tags), or start adam serve with --models-dir DIR to serve the models "
            "under DIR by path")
    path = Path(text).expanduser().resolve()
    for root in model_dirs:
        if path.is_relative_to(Path(root).expanduser().resolve()):
            return str(path)
    folders = ", ".join(str(d) for d in model_dirs)
    raise InvalidRequestError(f"{text!r} is outside the folders adam serve serves models "
                              f"from ({folders}); name a model under one of them")


def _invalid(text: str, how: str) -> InvalidRequestError:
    return InvalidRequestError(f"{text!r} is not a valid model name: {how}")
