"""LangChain integration: ``ChatAdam`` (a chat model) and ``AdamEmbeddings``."""

from adam_integrations.langchain.chat_models import ChatAdam
from adam_integrations.langchain.embeddings import AdamEmbeddings

__all__ = ["AdamEmbeddings", "ChatAdam"]
