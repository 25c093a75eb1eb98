"""Backends that send the work to a server: ``ollama`` (the official ``ollama`` client)
and ``openai_compat`` (the official ``openai`` client; vLLM, SGLang, llama.cpp's server).
Nothing here imports an engine, so the base install (no extras) runs them."""
