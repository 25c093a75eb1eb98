"""LangChain integration: ``ChatAdam`` (a chat model), ``AdamEmbeddings`` and
``AdamReranker`` (a document compressor)."""

from adam_integrations.langchain.chat_models import ChatAdam
from adam_integrations.langchain.embeddings import AdamEmbeddings
from adam_integrations.langchain.rerank import AdamReranker

__all__ = ["AdamEmbeddings", "AdamReranker", "ChatAdam"]
