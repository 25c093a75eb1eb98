"""LlamaIndex integration: ``AdamLLM`` (a function-calling LLM) and ``AdamEmbedding``."""

from adam_integrations.llama_index.embeddings import AdamEmbedding
from adam_integrations.llama_index.llms import AdamLLM

__all__ = ["AdamEmbedding", "AdamLLM"]
