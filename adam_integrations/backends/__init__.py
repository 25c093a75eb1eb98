"""Model backends: the engines that run a model.

- ``local``: in this process: ``llamacpp`` (GGUF, llama-cpp-python) and ``huggingface``
  (transformers), both on ``local.in_process``; each needs its extra (``[llamacpp]``,
  ``[transformers]``).
- ``remote``: on a server, through its official client: ``ollama`` (an Ollama server, or
  ``adam serve``) and ``openai_compat`` (vLLM, SGLang, llama.cpp's server, any
  OpenAI-compatible endpoint). The base install runs these; they import nothing from
  ``local``.
"""
