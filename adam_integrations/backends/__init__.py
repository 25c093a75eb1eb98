"""Model backends: the engines that run a model: ``llamacpp`` (GGUF in process),
``huggingface`` (transformers in process; both on ``in_process``), and ``ollama`` (an
Ollama server, or ``adam serve``, through the official client)."""
