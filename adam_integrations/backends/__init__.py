"""Model backends: the engines that run a model.

- ``local``: in this process: ``llamacpp`` (GGUF, llama-cpp-python) and ``huggingface``
  (transformers), both on ``local.in_process``; each needs its extra (``[llamacpp]``,
  ``[transformers]``).
- ``remote``: on a server, through its official client: ``ollama`` (an Ollama server, or
  ``adam serve``) and ``openai_compat`` (vLLM, SGLang, llama.cpp's server, any
  OpenAI-compatible endpoint). The base install runs these; they import nothing from
  ``local``.

The built-in classes can be imported from here by name, each on first use, so importing
this package imports no engine::

    from adam_integrations.backends import LlamaCppModel, OllamaModel
"""

from __future__ import annotations

import importlib
from typing import Any

from adam_integrations.core.registry import BUILTIN_BACKENDS

__all__ = sorted(target.partition(":")[2] for target in BUILTIN_BACKENDS.values())


def __getattr__(name: str) -> Any:
    for target in BUILTIN_BACKENDS.values():
        module, _, attribute = target.partition(":")
        if attribute == name:
            return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
