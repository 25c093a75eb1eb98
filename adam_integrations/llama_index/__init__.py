"""LlamaIndex integration: ``AdamLLM`` (a function-calling LLM), ``AdamEmbedding`` and
``AdamRerank`` (a node postprocessor)."""

from adam_integrations.llama_index.embeddings import AdamEmbedding
from adam_integrations.llama_index.llms import AdamLLM
from adam_integrations.llama_index.postprocessor import AdamRerank

__all__ = ["AdamEmbedding", "AdamLLM", "AdamRerank"]
