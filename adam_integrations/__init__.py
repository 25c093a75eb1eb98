"""adam-integrations: local language models for LangChain and LlamaIndex.

Example:
    >>> from adam_integrations import ModelManager
    >>> manager = ModelManager()                       # default model for this machine
    >>> manager.generate_response("Hello!", max_tokens=8)   # doctest: +SKIP
"""

from adam_integrations.core.backend import ModelBackend
from adam_integrations.core.errors import (
    AdamError,
    EmbeddedModelMissingError,
    InvalidInputTypeError,
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    UnknownBackendError,
    UnknownDomainError,
    UnsupportedOperationError,
)
from adam_integrations.core.manager import ModelManager
from adam_integrations.core.registry import ModelRegistry, registry
from adam_integrations.core.resolver import ModelSource, resolve
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    Completion,
    GenerationConfig,
    ModelInfo,
    ToolCall,
    Usage,
)

__version__ = "0.1.0"

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
    "ToolCall",
    "UnknownBackendError",
    "UnknownDomainError",
    "UnsupportedOperationError",
    "Usage",
    "registry",
    "resolve",
]
