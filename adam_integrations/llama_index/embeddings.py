"""AdamEmbedding: a LlamaIndex embedding model over adam-integrations' ModelManager."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from adam_integrations.chat_defaults import refuse_unknown_fields
from adam_integrations.manager import ModelManager

# LlamaIndex hands texts over in batches of embed_batch_size; the backend sorts each
# batch by length and pads per sub-batch, so large batches are best on CPU and GPU.
DEFAULT_EMBED_BATCH_SIZE = 256


class AdamEmbedding(BaseEmbedding):
    """Local embedding models for LlamaIndex, batched and length-sorted.

    Example:
        .. code-block:: python

            from adam_integrations.llama_index import AdamEmbedding
            from llama_index.core import Document, Settings, VectorStoreIndex

            Settings.embed_model = AdamEmbedding()          # the default embedder
            index = VectorStoreIndex.from_documents([Document(text="...")])

            embed = AdamEmbedding(model="hf:Qwen/Qwen3-Embedding-0.6B")
            embed.get_query_embedding("what is RAG?")       # the model's query prompt
            embed.get_text_embedding_batch(["a", "b"])      # one call per batch

    ``query_instruction`` / ``text_instruction`` prefix queries / documents; by default
    the model's own prompts are used where it defines them (Qwen3-Embedding does).
    """

    model: str | None = Field(default=None, description="Embedding model; None = default.")
    model_type: str = Field(default="auto", description="Backend name; auto = by model.")
    query_instruction: str | None = Field(default=None, description="Prefix for queries.")
    text_instruction: str | None = Field(default=None, description="Prefix for documents.")
    keep_alive: float | str | None = Field(default=None)
    backend_options: dict[str, Any] = Field(default_factory=dict)

    _manager: ModelManager = PrivateAttr()

    def __init__(self, manager: ModelManager | None = None, **data: Any) -> None:
        refuse_unknown_fields(type(self), data)
        data.setdefault("embed_batch_size", DEFAULT_EMBED_BATCH_SIZE)
        data.setdefault("model_name", data.get("model") or "default")
        super().__init__(**data)
        self._manager = manager or ModelManager(
            model_type=self.model_type, embedding_model=self.model,
            keep_alive=self.keep_alive, **self.backend_options)

    @classmethod
    def class_name(cls) -> str:
        return "AdamEmbedding"

    @property
    def manager(self) -> ModelManager:
        """The ModelManager whose embedding model this uses (shared per process)."""
        return self._manager

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._queries([query])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        if self.query_instruction is not None:
            return (await self._manager.abatch_embed([self.query_instruction + query]))[0]
        return (await self._manager.abatch_embed([query], kind="query"))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aget_text_embeddings([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._manager.batch_embed(self._documents(texts))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await self._manager.abatch_embed(self._documents(texts))

    def _queries(self, queries: list[str]) -> list[Embedding]:
        if self.query_instruction is not None:
            return self._manager.batch_embed([self.query_instruction + q for q in queries])
        return self._manager.batch_embed(queries, kind="query")

    def _documents(self, texts: list[str]) -> list[str]:
        if self.text_instruction is None:
            return texts
        return [self.text_instruction + text for text in texts]
