"""Backends that run the model in this process: llama.cpp (``llamacpp``, its parallel
slots in ``llamacpp_slots``, llama-cpp-python's private API behind ``llama_cpp_private``)
and transformers (``huggingface``), sharing ``in_process`` (the batcher, idle unloading)
and ``compute`` (the one thread that runs them)."""
