"""ModelRegistry: backend name -> backend class, including third-party backends.

Built-in backends are registered by import path, so importing this package stays cheap
(torch is imported only when a transformers model is actually used). Third-party
packages add backends through the entry-point group ``adam_integrations.backends``::

    [project.entry-points."adam_integrations.backends"]
    mybackend = "my_package.backend:MyBackend"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from adam_integrations.core.errors import AdamError, UnknownBackendError

if TYPE_CHECKING:
    from adam_integrations.core.backend import ModelBackend

ENTRY_POINT_GROUP = "adam_integrations.backends"

BUILTIN_BACKENDS: dict[str, str] = {
    "huggingface": "adam_integrations.backends.huggingface:HuggingFaceModel",
    "llamacpp": "adam_integrations.backends.llamacpp:LlamaCppModel",
}

# Other spellings users reach for; each maps to a registered name.
BACKEND_ALIASES: dict[str, str] = {
    "hf": "huggingface",
    "transformers": "huggingface",
    "llama.cpp": "llamacpp",
    "llama_cpp": "llamacpp",
    "gguf": "llamacpp",
}


class ModelRegistry:
    """Backend classes by name.

    Example:
        >>> from adam_integrations import ModelRegistry
        >>> "huggingface" in ModelRegistry().names()
        True
    """

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self._targets: dict[str, str | type[ModelBackend]] = dict(BUILTIN_BACKENDS)
        self._entry_points_loaded = not load_entry_points

    def register(self, name: str, backend: type[ModelBackend] | str) -> None:
        """Register a backend class (or a ``"module:Class"`` import path) under ``name``."""
        if not name or not isinstance(name, str):
            raise AdamError("a backend needs a non-empty string name")
        self._targets[name.lower()] = backend

    def names(self) -> list[str]:
        """Every registered backend name, sorted."""
        self._load_entry_points()
        return sorted(self._targets)

    def get(self, name: str) -> type[ModelBackend]:
        """The backend class registered under ``name`` (case-insensitive; aliases allowed)."""
        self._load_entry_points()
        key = BACKEND_ALIASES.get(str(name).lower(), str(name).lower())
        if key not in self._targets:
            raise UnknownBackendError(
                f"unknown backend {name!r}; registered backends: {', '.join(self.names())}. "
                f"Third-party backends register through the {ENTRY_POINT_GROUP!r} entry point."
            )
        target = self._targets[key]
        if isinstance(target, str):
            target = _import(target)
            self._targets[key] = target
        return target

    def __contains__(self, name: object) -> bool:
        try:
            self.get(str(name))
        except UnknownBackendError:
            return False
        return True

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            self._targets.setdefault(point.name.lower(), point.value)


def _import(target: str) -> type[ModelBackend]:
    module_name, _, attribute = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise AdamError(
            f"backend {target!r} could not be imported: {error}. "
            "Is the package that provides it installed?"
        ) from error


registry = ModelRegistry()
"""The process-wide registry every entry point uses."""
