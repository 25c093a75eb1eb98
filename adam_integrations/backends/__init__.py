"""Model backends: engines that run a model (transformers today; llama.cpp and Ollama next)."""
