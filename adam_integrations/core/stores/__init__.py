"""What is on disk, read without loading a model: the Hugging Face cache (``hub``),
Ollama's store (``ollama_store``), GGUF and safetensors headers, what a folder of weights
is (``weight_files``) and finished-or-not cache folders (``cache_entry``). These import
only the bottom of ``core`` (errors, atomic writes, paths)."""
