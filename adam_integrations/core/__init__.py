"""The bottom layer: backend-neutral types, errors, the ModelBackend interface, the backend
registry, the reference resolver and the local stores it reads (Hugging Face cache,
Ollama's store, GGUF headers). It imports nothing above it."""

__version__ = "0.1.0"
