"""AdamReranker: a LangChain document compressor that reranks with adam-integrations'
ModelManager (``ModelManager.rerank``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field

from adam_integrations.chat_defaults import refuse_unknown_fields
from adam_integrations.manager import ModelManager


class AdamReranker(BaseDocumentCompressor):
    """Rerank retrieved documents with a local reranker (Qwen3-Reranker's method).

    Setup:
        .. code-block:: bash

            pip install 'adam-integrations[llamacpp]'

    In a retriever (as ``CrossEncoderReranker`` is used):
        .. code-block:: python

            from langchain_classic.retrievers import ContextualCompressionRetriever
            from adam_integrations.langchain import AdamReranker

            reranker = AdamReranker(model="qwen3_reranker_0.6b", top_n=3)
            retriever = ContextualCompressionRetriever(
                base_compressor=reranker, base_retriever=store.as_retriever())
            retriever.invoke("what is in the texts?")

    The documents come back best first, at most ``top_n`` of them, each a copy with its
    score in ``metadata["relevance_score"]`` (as Cohere's and Jina's rerankers put it).
    """

    model: str | None = None
    """Reranking model reference; None = the embedded chat model, which ranks weakly."""
    model_type: str = "auto"
    top_n: int | None = 3
    """How many documents to keep (None: all, reordered)."""
    instruction: str | None = None
    """What relevance means (Qwen3-Reranker's instruction; None: its web-search default)."""
    keep_alive: float | str | None = None
    backend_options: dict[str, Any] = Field(default_factory=dict)
    manager: ModelManager | None = Field(default=None, exclude=True)
    """Wrap an existing ModelManager (its reranking model is used)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    def __init__(self, **data: Any) -> None:
        refuse_unknown_fields(type(self), data)
        super().__init__(**data)
        if self.manager is None:
            self.manager = ModelManager(model_type=self.model_type, rerank_model=self.model,
                                        keep_alive=self.keep_alive, **self.backend_options)

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Callbacks | None = None) -> Sequence[Document]:
        """The ``top_n`` documents most relevant to ``query``, best first."""
        if not documents:
            return []
        reranking = self.manager.rerank(query, [d.page_content for d in documents],
                                        top_n=self.top_n, instruction=self.instruction)
        return _scored(documents, reranking)

    async def acompress_documents(self, documents: Sequence[Document], query: str,
                                  callbacks: Callbacks | None = None) -> Sequence[Document]:
        """Async ``compress_documents``; never blocks the event loop."""
        if not documents:
            return []
        reranking = await self.manager.arerank(query, [d.page_content for d in documents],
                                               top_n=self.top_n,
                                               instruction=self.instruction)
        return _scored(documents, reranking)


def _scored(documents: Sequence[Document], reranking: Any) -> list[Document]:
    return [Document(page_content=documents[r.index].page_content,
                     metadata={**documents[r.index].metadata,
                               "relevance_score": r.relevance_score},
                     id=documents[r.index].id)
            for r in reranking.results]
