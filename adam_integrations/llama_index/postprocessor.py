"""AdamRerank: a LlamaIndex node postprocessor that reranks with adam-integrations'
ModelManager (``ModelManager.rerank``)."""

from __future__ import annotations

from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from adam_integrations.chat_defaults import refuse_unknown_fields
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.manager import ModelManager


class AdamRerank(BaseNodePostprocessor):
    """Rerank retrieved nodes with a local reranker (Qwen3-Reranker's method), as
    ``SentenceTransformerRerank`` does.

    Example:
        .. code-block:: python

            from adam_integrations.llama_index import AdamRerank

            rerank = AdamRerank(model="qwen3_reranker_0.6b", top_n=3)
            engine = index.as_query_engine(similarity_top_k=10,
                                           node_postprocessors=[rerank])

    The nodes come back best first, at most ``top_n`` of them, each with the reranker's
    score as its ``score``.
    """

    model: str | None = Field(default=None, description="Reranking model; None = the "
                              "embedded chat model, which ranks weakly.")
    model_type: str = Field(default="auto", description="Backend name; auto = by model.")
    top_n: int | None = Field(default=2, description="Nodes to keep (None: all).")
    instruction: str | None = Field(default=None, description="What relevance means.")
    keep_alive: float | str | None = Field(default=None)
    backend_options: dict[str, Any] = Field(default_factory=dict)

    _manager: ModelManager = PrivateAttr()

    def __init__(self, manager: ModelManager | None = None, **data: Any) -> None:
        refuse_unknown_fields(type(self), data)
        super().__init__(**data)
        self._manager = manager or ModelManager(
            model_type=self.model_type, rerank_model=self.model,
            keep_alive=self.keep_alive, **self.backend_options)

    @classmethod
    def class_name(cls) -> str:
        return "AdamRerank"

    @property
    def manager(self) -> ModelManager:
        """The ModelManager whose reranking model this uses."""
        return self._manager

    def _postprocess_nodes(self, nodes: list[NodeWithScore],
                           query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        if not nodes:
            return []
        reranking = self._manager.rerank(_query(query_bundle), _texts(nodes),
                                         top_n=self.top_n, instruction=self.instruction)
        return _scored(nodes, reranking)

    async def _apostprocess_nodes(self, nodes: list[NodeWithScore],
                                  query_bundle: QueryBundle | None = None
                                  ) -> list[NodeWithScore]:
        if not nodes:
            return []
        reranking = await self._manager.arerank(_query(query_bundle), _texts(nodes),
                                                top_n=self.top_n,
                                                instruction=self.instruction)
        return _scored(nodes, reranking)


def _query(query_bundle: QueryBundle | None) -> str:
    if query_bundle is None:
        raise InvalidRequestError("AdamRerank needs the query: pass query_str= (or a "
                                  "query_bundle) to postprocess_nodes", param="query")
    return query_bundle.query_str


def _texts(nodes: list[NodeWithScore]) -> list[str]:
    return [node.node.get_content(metadata_mode=MetadataMode.EMBED) for node in nodes]


def _scored(nodes: list[NodeWithScore], reranking: Any) -> list[NodeWithScore]:
    return [NodeWithScore(node=nodes[r.index].node, score=r.relevance_score)
            for r in reranking.results]
