"""The reranking wire format: ``POST /v1/rerank`` (and ``/rerank``, ``/v2/rerank``) as vLLM,
SGLang and llama-server take it (Jina's and Cohere's shape), and ``/api/rerank`` with the
same fields for Ollama clients (Ollama has no reranking of its own).

A request names a ``model``, a ``query`` and ``documents`` (strings, or objects with a
``text``), and may ask for the ``top_n`` best and for the documents back
(``return_documents``, default true as vLLM's); ``instruction`` is Qwen3-Reranker's (what
relevance means). The answer lists the results best first, each with its ``index`` in
``documents``, its ``relevance_score`` and, when asked, its ``document``; ``usage`` counts
the tokens read and names documents cut to fit the context.

Example:
    >>> RerankRequest.parse({"model": "m", "query": "q",
    ...                      "documents": ["a", {"text": "b"}]}).texts()
    ['a', 'b']
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field

from adam_integrations.core.errors import UnsupportedOperationError
from adam_integrations.core.rerank import PairScores, Reranking
from adam_integrations.wire.request import RequestPart, WireRequest


class RerankDocument(RequestPart):
    """A document as an object (Jina's and Cohere's form)."""

    described = "a document as an object with its text"

    text: str = Field(description="the document's text")


class RerankRequest(WireRequest):
    """``POST /v1/rerank``, ``/rerank``, ``/v2/rerank`` and ``/api/rerank``."""

    model: str
    query: Annotated[str, Field(min_length=1)] = Field(
        description="the text the documents are ranked for")
    documents: Annotated[list[str | RerankDocument], Field(min_length=1)] = Field(
        description="the texts to rank: strings, or objects with a text")
    top_n: int | None = Field(None, ge=1, description="keep only the N most relevant")
    return_documents: bool | None = Field(None, description="each result with its "
                                          "document (default true)")
    instruction: str | None = Field(None, description="what relevance means "
                                    "(Qwen3-Reranker's instruction)")

    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


def rerank_answer(reranking: Reranking, model: str, request: RerankRequest) -> dict[str, Any]:
    """The answer vLLM and llama-server give (Jina's shape), with ``usage``."""
    with_documents = request.return_documents is not False
    usage: dict[str, Any] = {"prompt_tokens": reranking.prompt_tokens,
                             "total_tokens": reranking.prompt_tokens}
    if reranking.truncated:
        usage["truncated_documents"] = reranking.truncated
    return {"id": f"rerank-{uuid.uuid4().hex[:24]}", "model": model, "usage": usage,
            "results": [{"index": r.index, "relevance_score": r.relevance_score,
                         **({"document": {"text": r.document}} if with_documents else {})}
                        for r in reranking.results]}


RERANK_ANSWER: dict[str, Any] = {
    "type": "object", "required": ["id", "model", "usage", "results"],
    "properties": {
        "id": {"type": "string"}, "model": {"type": "string"},
        "usage": {"type": "object", "required": ["prompt_tokens", "total_tokens"],
                  "properties": {"prompt_tokens": {"type": "integer"},
                                 "total_tokens": {"type": "integer"},
                                 "truncated_documents": {"type": "array",
                                                         "items": {"type": "integer"}}}},
        "results": {"type": "array", "items": {
            "type": "object", "required": ["index", "relevance_score"],
            "properties": {"index": {"type": "integer", "minimum": 0},
                           "relevance_score": {"type": "number"},
                           "document": {"type": "object", "required": ["text"],
                                        "properties": {"text": {"type": "string"}}}}}}}}
"""The answer's JSON schema (``/openapi.json``)."""


def rerank_scores(answer: Any, count: int, server: str) -> PairScores:
    """A server's rerank answer (Jina's shape, every document ranked) read back as one
    score per document, in request order; an answer of another shape is refused naming
    the server."""
    results = answer.get("results") if isinstance(answer, dict) else None
    scores: list[float | None] = [None] * count
    for result in results if isinstance(results, list) else []:
        index = result.get("index") if isinstance(result, dict) else None
        score = result.get("relevance_score") if isinstance(result, dict) else None
        if isinstance(index, int) and 0 <= index < count and isinstance(
                score, (int, float)) and not isinstance(score, bool):
            scores[index] = float(score)
    if any(score is None for score in scores):
        raise UnsupportedOperationError(
            f"the server at {server} answered /v1/rerank without a relevance_score for "
            "every document (Jina's and vLLM's shape): rerank on an engine that answers so")
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    tokens = usage.get("total_tokens") or usage.get("prompt_tokens") or 0
    truncated = usage.get("truncated_documents") or []
    return PairScores([s for s in scores if s is not None],
                      tokens if isinstance(tokens, int) else 0,
                      [i for i in truncated if isinstance(i, int)])
