"""Reranking: a query and documents in, each document's relevance out, best first.

The role beside chat and embeddings (``ModelBackend.rerank``). This module holds what every
backend shares: the checks on a request, the result types, and **Qwen3-Reranker's method**,
by which any causal language model reranks: each (query, document) pair is a conversation
asking whether the document meets the query's need, answered "yes" or "no"; the score is
the probability of "yes" against "no" at the answer's first position,
``softmax([logit(no), logit(yes)])[yes]`` (the Qwen3-Reranker model card's reference code,
also vLLM's ``examples/offline_inference/qwen3_reranker.py``).

The prompt is built so that its start, up to the document, is the same for every document
of a call (``RerankPrompt.shared``): the in-process backends compute it once and reuse it.

Example:
    >>> prompt = rerank_prompt("What is the capital of China?")
    >>> prompt.shared.endswith("<Query>: What is the capital of China?\\n")
    True
    >>> prompt.document_part("Beijing.")
    '<Document>: Beijing.'
    >>> round(yes_probability(yes_logit=2.0, no_logit=0.0), 4)
    0.8808
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adam_integrations.core.errors import InvalidInputTypeError, InvalidRequestError

DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
"""Qwen3-Reranker's default instruction (its model card; llama.cpp's converter writes the
same into a reranker GGUF's ``rerank`` template)."""

JUDGE = ('Judge whether the Document meets the requirements based on the Query and the '
         'Instruct provided. Note that the answer can only be "yes" or "no".')
"""The system prompt Qwen3-Reranker was trained with."""

ANSWER_START = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
"""What follows the document: the user turn closed and the answer opened with an empty
think block (Qwen3's template with thinking off), as the reference appends it."""

YES, NO = "yes", "no"


@dataclass(frozen=True)
class RerankPrompt:
    """One call's prompt: ``shared`` (system turn, instruction, query), then for each
    document ``document_part(document)`` and ``ANSWER_START``. Tokenized in these three
    parts, as the reference code tokenizes its prefix, pair and suffix apart (each part
    ends where the tokenizer's pre-tokenizer splits anyway, so the tokens are the same as
    for the whole text)."""

    shared: str
    answer_start: str = ANSWER_START

    @staticmethod
    def document_part(document: str) -> str:
        return f"<Document>: {document}"


def rerank_prompt(query: str, instruction: str | None = None) -> RerankPrompt:
    """Qwen3-Reranker's prompt for ``query`` (ChatML, as Qwen3 writes it)."""
    return RerankPrompt(
        f"<|im_start|>system\n{JUDGE}<|im_end|>\n<|im_start|>user\n"
        f"<Instruct>: {instruction or DEFAULT_INSTRUCTION}\n<Query>: {query}\n")


def yes_probability(*, yes_logit: float, no_logit: float) -> float:
    """``softmax([no, yes])[yes]``, computed without overflow (a logistic of the
    difference)."""
    difference = yes_logit - no_logit
    if difference >= 0:
        return 1.0 / (1.0 + math.exp(-difference))
    exponential = math.exp(difference)
    return exponential / (1.0 + exponential)


@dataclass
class RankedDocument:
    """One document of a reranking: its position in the request, its relevance (0-1 for
    Qwen3-Reranker's method and sigmoid cross-encoders; higher is more relevant) and its
    text."""

    index: int
    relevance_score: float
    document: str


@dataclass
class Reranking:
    """A reranking's results, best first (``top_n`` of them when it was given), and what
    it read."""

    results: list[RankedDocument]
    model: str = ""
    prompt_tokens: int = 0
    """Tokens read, every pair's whole prompt counted (as vLLM and llama-server count
    them), shared parts included."""
    truncated: list[int] = field(default_factory=list)
    """The indices of documents cut to fit the model's context."""


@dataclass
class PairScores:
    """What a backend's ``_rerank`` returns: one score per document, in request order."""

    scores: list[float]
    prompt_tokens: int = 0
    truncated: list[int] = field(default_factory=list)


def check_rerank(query: Any, documents: Any, top_n: Any,
                 instruction: Any) -> tuple[str, list[str], int | None, str | None]:
    """A reranking request's fields, checked: each error names the field and what it
    takes."""
    if not isinstance(query, str):
        raise InvalidInputTypeError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InvalidRequestError("query is empty: give the text the documents are ranked "
                                  "for", param="query")
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise InvalidInputTypeError(f"documents must be a list of strings, got "
                                    f"{type(documents).__name__}; wrap a single text as "
                                    "[text]")
    if not documents:
        raise InvalidRequestError("documents is empty: give at least one text to rank",
                                  param="documents")
    for index, document in enumerate(documents):
        if not isinstance(document, str):
            raise InvalidInputTypeError(f"documents[{index}] is a {type(document).__name__}, "
                                        "not a string; give each document's text")
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int)
                              or top_n < 1):
        raise InvalidRequestError(f"top_n must be a whole number of at least 1, got "
                                  f"{top_n!r}", param="top_n")
    if instruction is not None and not isinstance(instruction, str):
        raise InvalidInputTypeError(f"instruction must be a string, got "
                                    f"{type(instruction).__name__}")
    return query, list(documents), top_n, instruction or None


def ranked(scores: PairScores, documents: list[str], top_n: int | None,
           model: str = "") -> Reranking:
    """``scores`` as a ``Reranking``: best first (ties in request order), ``top_n`` kept.

    Example:
        >>> [r.index for r in ranked(PairScores([0.1, 0.9, 0.5]), ["a", "b", "c"], 2)
        ...  .results]
        [1, 2]
    """
    order = sorted(range(len(documents)), key=lambda i: -scores.scores[i])
    return Reranking([RankedDocument(i, float(scores.scores[i]), documents[i])
                      for i in order[:top_n]], model, scores.prompt_tokens,
                     sorted(scores.truncated))


def document_tokens(prompt: RerankPrompt, documents: list[str], tokenize: Any, *,
                    window: int, used: int, name: str) -> tuple[list[list[int]], list[int]]:
    """Each document's part of the prompt as tokens (``tokenize(text)``, no special tokens
    added), cut to what a ``window``-token context leaves after the ``used`` tokens of the
    shared part and the answer's start, as the reference code truncates a pair; and the
    indices of the documents cut."""
    room = window - used
    if room < 1:
        raise InvalidRequestError(f"the query and instruction fill the {window}-token "
                                  f"context {name} reranks in; shorten them", param="query")
    parts, truncated = [], []
    for index, document in enumerate(documents):
        tokens = list(tokenize(prompt.document_part(document)))
        if len(tokens) > room:
            tokens = tokens[:room]
            truncated.append(index)
        parts.append(tokens)
    return parts, truncated


def yes_no_ids(tokenize: Any, name: str) -> tuple[int, int]:
    """The token ids of "yes" and "no" (each a single token in the vocabularies that
    rerank this way); ``tokenize(text)`` gives a text's ids without special tokens."""
    found = []
    for word in (YES, NO):
        ids = tokenize(word)
        if len(ids) != 1:
            raise InvalidRequestError(
                f"{name} cannot rerank by Qwen3-Reranker's method: {word!r} is not one token "
                f"in its vocabulary ({len(ids)} tokens); use a Qwen3-Reranker or another "
                "model whose vocabulary has it")
        found.append(ids[0])
    return found[0], found[1]
