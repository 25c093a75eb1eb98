"""The package's optional parts, installed as pip extras, and the error naming one missing.

``pip install adam-integrations`` is the core, both framework adapters and the backends
that talk to a server (Ollama; OpenAI-compatible engines: vLLM, SGLang, llama.cpp's
server, ``adam serve``). The rest comes with an extra:

- ``[transformers]``: the transformers backend (torch, transformers, accelerate) and
  constrained decoding (xgrammar);
- ``[llamacpp]``: the in-process llama.cpp backend (llama-cpp-python) and constrained
  decoding (xgrammar);
- ``[server]``: ``adam serve`` (starlette, uvicorn, prometheus-client, and the
  ``anthropic`` SDK, whose types describe the Messages route's answers);
- ``[anthropic]``: the Anthropic backend (the ``anthropic`` SDK);
- ``[tune]``: ``adam tune``, ``adam distill``, ``adam merge`` (PEFT, TRL, datasets, and
  the transformers backend's parts);
- ``[embedded]``: the offline default models (with llama-cpp-python), ``[onnx]``: int8
  embeddings, ``[all]``: everything.

Using a part whose extra is missing raises ``MissingExtraError`` (an ``AdamError``)
naming the extra to install, before any dependency's ``ModuleNotFoundError`` could.
"""

from __future__ import annotations

import importlib.util

from adam_integrations.core.errors import AdamError

EXTRAS: dict[str, tuple[str, ...]] = {
    "transformers": ("torch", "transformers", "accelerate", "xgrammar"),
    "llamacpp": ("llama_cpp", "xgrammar"),
    "server": ("starlette", "uvicorn", "prometheus_client", "anthropic"),
    "anthropic": ("anthropic",),
    "tune": ("torch", "transformers", "accelerate", "peft", "trl", "datasets"),
}
"""Each extra, by the modules it installs (what is checked)."""


class MissingExtraError(AdamError, ImportError):
    """A part of the package whose optional dependencies are not installed."""


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    return [module for module in EXTRAS[extra] if importlib.util.find_spec(module) is None]


def has_extra(extra: str) -> bool:
    return not missing_modules(extra)


def require_extra(extra: str, what: str) -> None:
    """Raise ``MissingExtraError`` when ``extra`` is not installed; ``what`` names the
    part that needs it (e.g. "adam serve needs starlette, uvicorn (not installed): pip
    install 'adam-integrations[server]'")."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(
            f"{what} needs {', '.join(missing)} (not installed): pip install "
            f"'adam-integrations[{extra}]'")
