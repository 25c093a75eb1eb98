"""The transformers backend (``HuggingFaceModel``), split by job:

- ``model``: the backend class: where the files are, loading, info, chat and embed calls;
- ``gguf_conversion``: a GGUF converted once to a transformers folder, cached by sha256;
- ``generation``: ``generate`` on the compute thread, streamed as chunks;
- ``embedding``: sentence-transformers folders (pooling, normalization, prompts);
- ``devices``: the device and dtype defaults;
- ``loaded``: what exists while a model is in memory.
"""

from adam_integrations.backends.local.huggingface.generation import IncrementalDecoder
from adam_integrations.backends.local.huggingface.model import HuggingFaceModel

__all__ = ["HuggingFaceModel", "IncrementalDecoder"]
