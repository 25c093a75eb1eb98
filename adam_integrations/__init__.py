"""adam-integrations: local language models for LangChain and LlamaIndex.

Layers, bottom first; a module imports its own folder and lower layers only, and folders
on one layer stay apart (``tests/unit/test_layers.py`` keeps it so):

1. ``core/``: types, errors, ``ModelBackend``, the registry, the reference resolver and
   the local stores it reads (HF cache, Ollama's store, GGUF headers), decoding helpers.
2. ``catalog/`` (which models exist, the hardware pick, the default model) and ``wire/``
   (one module per wire format: the Ollama API, used by the Ollama backend and the server).
3. ``sharing/``: one index over the stores, and sharing a GGUF with Ollama.
4. ``backends/``: transformers, llama.cpp, the Ollama client.
5. ``manager.py``: ``ModelManager``.
6. ``langchain/``, ``llama_index/``, ``server/``: the adapters and ``adam serve``.
7. ``cli.py`` and this package root.

Example:
    >>> from adam_integrations import ModelManager
    >>> manager = ModelManager()                       # default model for this machine
    >>> manager.generate_response("Hello!", max_tokens=8)   # doctest: +SKIP
"""

from adam_integrations import catalog  # noqa: F401  (registers the catalog's model names)
from adam_integrations.catalog.defaults import resolve_model as resolve
from adam_integrations.core import __version__ as __version__
from adam_integrations.core.backend import ModelBackend
from adam_integrations.core.errors import (
    AdamError,
    EmbeddedModelMissingError,
    InvalidInputTypeError,
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    SchemaRelaxationWarning,
    UnknownBackendError,
    UnknownDomainError,
    UnknownOptionError,
    UnsupportedOperationError,
)
from adam_integrations.core.registry import ModelRegistry, registry
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    Completion,
    GenerationConfig,
    ModelInfo,
    ModelSource,
    ToolCall,
    Usage,
)
from adam_integrations.manager import ModelManager

__all__ = [
    "AdamError",
    "ChatMessage",
    "Chunk",
    "Completion",
    "EmbeddedModelMissingError",
    "GenerationConfig",
    "InvalidInputTypeError",
    "InvalidRequestError",
    "ModelBackend",
    "ModelInfo",
    "ModelLoadError",
    "ModelManager",
    "ModelNotFoundError",
    "ModelRegistry",
    "ModelSource",
    "SchemaRelaxationWarning",
    "ToolCall",
    "UnknownBackendError",
    "UnknownDomainError",
    "UnknownOptionError",
    "UnsupportedOperationError",
    "Usage",
    "registry",
    "resolve",
]
