"""Query and document prompts of known retrieval embedding families.

Transformers folders carry their prompts (sentence-transformers' ``prompts``); GGUF files
do not, so the llama.cpp backend looks the family up here by the model's name. Each entry
is what the model's own card asks for.
"""

from __future__ import annotations

from adam_integrations.core.types import EmbeddingKind

# (name fragment, query prompt, document prompt); the first fragment in the name wins.
_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("qwen3-embedding", "Instruct: Given a web search query, retrieve relevant passages that "
                        "answer the query\nQuery:", ""),
    ("nomic-embed", "search_query: ", "search_document: "),
    ("e5-", "query: ", "passage: "),
)


def embedding_prompt(model_name: str, kind: EmbeddingKind) -> str:
    """The text put before each input of ``kind`` for the model called ``model_name``.

    Example:
        >>> embedding_prompt("nomic-embed-text-v1.5", "query")
        'search_query: '
        >>> embedding_prompt("all-MiniLM-L6-v2", "query")
        ''
    """
    name = model_name.lower()
    for fragment, query, document in _FAMILIES:
        if fragment in name:
            return query if kind == "query" else document
    return ""
