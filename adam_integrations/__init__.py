"""adam-integrations: local language models for LangChain and LlamaIndex.

Layers, bottom first; a module imports its own folder and lower layers only, and folders
on one layer stay apart (``tests/unit/test_layers.py`` keeps it so):

1. ``core/``: types, errors, ``ModelBackend``, the registry, the reference resolver;
   ``core/stores/``: what is on disk (HF cache, Ollama's store, GGUF/safetensors headers).
2. ``catalog/`` (which models exist, the hardware pick, the default model), ``wire/``
   (one module per wire format, both directions) and ``decoding/`` (JSON schema ->
   grammar -> constrained decoding, penalties, log-probabilities, chunk assembly).
3. ``sharing/``: one index over the stores, and sharing a GGUF with Ollama.
4. ``backends/``: ``local/`` (llama.cpp, transformers in process) and ``remote/`` (the
   Ollama and OpenAI-compatible clients), which stay apart.
5. ``served.py``: one model as both front doors reach it (its stored layers, domain and
   default sampling).
6. ``manager.py`` and ``tools/`` (convert, quantize, evaluate).
7. ``chat_defaults.py``: the settings both framework adapters share.
8. ``langchain/``, ``llama_index/``, ``server/``: the adapters and ``adam serve``.
9. ``cli/`` (one module per command) and this package root.

Example:
    >>> from adam_integrations import ModelManager
    >>> manager = ModelManager()                       # default model for this machine
    >>> manager.generate_response("Hello!", max_tokens=8)   # doctest: +SKIP
"""

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
from adam_integrations.core.rerank import RankedDocument, Reranking
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
    "RankedDocument",
    "Reranking",
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
