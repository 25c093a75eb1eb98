"""ModelRegistry: backend name -> backend class, including third-party backends.

Built-in backends are registered by import path, so importing this package stays cheap
(torch is imported only when a transformers model is actually used). Third-party
packages add backends through the entry-point group ``adam_integrations.backends``::

    [project.entry-points."adam_integrations.backends"]
    mybackend = "my_package.backend:MyBackend"

``choose`` turns the backend a user asked for (or ``"auto"``) and a resolved model into a
backend class plus the reason, which becomes part of ``ModelManager.explanation``.
The automatic choice (the default everywhere):

- a GGUF file runs on llama.cpp, in place, when llama-cpp-python is installed and either
  the machine has no GPU or this llama.cpp build offloads to the GPU; otherwise on
  transformers (which converts the GGUF once and runs it on the GPU);
- everything else (safetensors folders, hub repositories) runs on transformers;
- ``ollama:<name>`` runs in place from Ollama's store when the store is on this machine
  (a GGUF, as above), else on the Ollama server (``OllamaModel``);
- backend options narrow the choice: ``dtype="float32"`` is a transformers option, so it
  picks transformers even for a GGUF; ``n_ctx`` picks llama.cpp.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from adam_integrations.core.errors import (
    AdamError,
    InvalidRequestError,
    UnknownBackendError,
    UnknownOptionError,
)
from adam_integrations.core.extras import has_extra
from adam_integrations.core.hardware import GpuKind, gpu_kind

if TYPE_CHECKING:
    from adam_integrations.core.backend import ModelBackend
    from adam_integrations.core.types import ModelSource

ENTRY_POINT_GROUP = "adam_integrations.backends"

AUTO = "auto"

BUILTIN_BACKENDS: dict[str, str] = {
    "huggingface": "adam_integrations.backends.local.huggingface:HuggingFaceModel",
    "llamacpp": "adam_integrations.backends.local.llamacpp:LlamaCppModel",
    "ollama": "adam_integrations.backends.remote.ollama:OllamaModel",
    "openai": "adam_integrations.backends.remote.openai_compat:OpenAICompatibleModel",
    "vllm": "adam_integrations.backends.remote.openai_compat:VLLMModel",
    "sglang": "adam_integrations.backends.remote.openai_compat:SGLangModel",
    "llamacpp-server": "adam_integrations.backends.remote.openai_compat:LlamaServerModel",
    "anthropic": "adam_integrations.backends.remote.anthropic:AnthropicModel",
}

# Other spellings users reach for; each maps to a registered name.
BACKEND_ALIASES: dict[str, str] = {
    "hf": "huggingface",
    "transformers": "huggingface",
    "llama.cpp": "llamacpp",
    "llama_cpp": "llamacpp",
    "gguf": "llamacpp",
    "llama-server": "llamacpp-server",
    "llama.cpp-server": "llamacpp-server",
    "openai-compatible": "openai",
}


@dataclass(frozen=True)
class BackendChoice:
    """The backend class chosen for one model, and why (one clause)."""

    backend_class: type[ModelBackend]
    reason: str


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

    def check_options(self, name: str, options: Mapping[str, Any]) -> type[ModelBackend]:
        """The backend class ``name``, after checking that it takes every option."""
        backend_class = self.get(name)
        _check_options(backend_class, options)
        return backend_class

    def choose(
        self, requested: str, source: ModelSource, options: Mapping[str, Any] | None = None
    ) -> BackendChoice:
        """The backend for ``source``: the one ``requested``, or the automatic choice for
        ``"auto"`` (see the module docstring), taking ``options`` into account."""
        options = options or {}
        if str(requested).lower() != AUTO:
            backend_class = self.check_options(requested, options)
            return BackendChoice(backend_class, f"backend {backend_class.name} as asked")
        preferred = _automatic_preference(source)
        rejected: list[str] = []
        for name, reason in preferred:
            backend_class = self.get(name)
            refusal = backend_class.refuses(source)
            unknown = _unknown_options(backend_class, options)
            if refusal is None and not unknown:
                if rejected:
                    reason = f"{reason} ({'; '.join(rejected)})"
                return BackendChoice(backend_class, reason)
            rejected.append(f"not {name}: " + (refusal or f"it takes no option "
                                                         f"{', '.join(unknown)}"))
        raise InvalidRequestError(
            f"no backend can run {source.name!r} with options {sorted(options)}: "
            f"{'; '.join(rejected)}. Drop the options that belong to another backend, or "
            "name the backend with model_type=...")

    def check_known_options(self, options: Mapping[str, Any]) -> None:
        """UnknownOptionError (with the closest names) for an option that none of the
        backends the automatic choice can pick takes: a misspelt option fails when it is
        given, not at first use."""
        known: set[str] = set()
        for name in sorted(AUTOMATIC_BACKENDS & set(self.names())):
            backend_class = self.get(name)
            if not _unknown_options(backend_class, {"\0": None}):
                return  # a backend that takes any keyword takes these too
            known |= _option_names(backend_class)
        unknown = sorted(set(options) - known)
        if unknown:
            raise UnknownOptionError(
                f"no backend takes the option(s) {', '.join(map(repr, unknown))}"
                f"{did_you_mean(unknown, known)}; the backends' options are listed in the "
                "docs (docs/python.md: ModelManager)")

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


AUTOMATIC_BACKENDS = frozenset({"huggingface", "llamacpp", "ollama", "openai", "vllm",
                                "sglang", "llamacpp-server", "anthropic"})
"""Every backend ``_automatic_preference`` can name."""


def _automatic_preference(source: ModelSource) -> list[tuple[str, str]]:
    """Backend names in order of preference for ``source``, each with its reason."""
    transformers = ("huggingface", "transformers runs safetensors and hub models")
    if source.kind == "ollama":
        return [("ollama", "it is not in a local Ollama store, so the Ollama server runs it")]
    if source.kind == "remote":
        engine = source.engine or "openai"
        return [(engine, f"{engine} serves it at {source.endpoint}")]
    if not source.is_gguf:
        return [transformers, ("llamacpp", "llama.cpp runs GGUF files")]
    return gguf_backends(gpu_kind())


def gguf_backends(gpu: GpuKind | None) -> list[tuple[str, str]]:
    """The backends for a GGUF on a machine with ``gpu`` (None: no GPU), best first, each
    with its reason. The one rule both the automatic choice (``choose``) and the
    hardware pick (``catalog.selection``) follow, so the pick and the run agree."""
    if importlib.util.find_spec("llama_cpp") is None:
        if not has_extra("transformers"):  # neither engine: llama.cpp's extra is named
            return [("llamacpp", "a GGUF runs on llama.cpp")]
        return [("huggingface", "llama-cpp-python is not installed, so transformers runs "
                 "the GGUF (converted once); pip install 'adam-integrations[llamacpp]' "
                 "for llama.cpp speed")]
    if gpu is None:
        return [("llamacpp", "a GGUF on a machine without a GPU runs fastest on llama.cpp"),
                ("huggingface", "transformers converts the GGUF once")]
    if _llama_cpp_offloads():
        return [("llamacpp", f"llama.cpp runs the GGUF with its layers on the {gpu} GPU"),
                ("huggingface", "transformers converts the GGUF once")]
    return [("huggingface", f"a {gpu} GPU is present and this llama.cpp build runs on the "
             "CPU only, so transformers runs the GGUF (converted once) on the GPU"),
            ("llamacpp", "llama.cpp runs the GGUF on the CPU")]


def _llama_cpp_offloads() -> bool:
    try:
        import llama_cpp
    except Exception:  # a broken build is a build without offload
        return False
    return bool(llama_cpp.llama_supports_gpu_offload())


def _unknown_options(backend_class: type[ModelBackend], options: Mapping[str, Any]) -> list[str]:
    """The options ``backend_class`` does not take (none when it takes ``**kwargs``)."""
    parameters = inspect.signature(backend_class.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return []
    return sorted(set(options) - set(parameters) - {"self"})


def _check_options(backend_class: type[ModelBackend], options: Mapping[str, Any]) -> None:
    unknown = _unknown_options(backend_class, options)
    if unknown:
        raise UnknownOptionError(
            f"backend {backend_class.name!r} takes no option {', '.join(map(repr, unknown))}"
            f"{did_you_mean(unknown, _option_names(backend_class))}; check the spelling, or "
            "leave model_type='auto' to pick the backend that does")


def _option_names(backend_class: type[ModelBackend]) -> set[str]:
    parameters = inspect.signature(backend_class.__init__).parameters
    return {name for name, p in parameters.items()
            if name not in ("self", "model") and p.kind is not inspect.Parameter.VAR_KEYWORD}


def did_you_mean(unknown: list[str], known: set[str]) -> str:
    """" (did you mean 'n_ctx'?)" for the known names closest to the unknown ones, or "".

    Example:
        >>> did_you_mean(["n_ctxx"], {"n_ctx", "device"})
        " (did you mean 'n_ctx'?)"
    """
    import difflib

    close = dict.fromkeys(match for name in unknown
                          for match in difflib.get_close_matches(name, sorted(known), n=2))
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def accepted_options(
    backend_class: type[ModelBackend], options: Mapping[str, Any]
) -> dict[str, Any]:
    """The subset of ``options`` that ``backend_class`` takes."""
    unknown = set(_unknown_options(backend_class, options))
    return {k: v for k, v in options.items() if k not in unknown}


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
