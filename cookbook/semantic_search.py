"""Embed a few documents and rank them against a query by cosine similarity."""

from adam_integrations import ModelManager
from adam_integrations.cli import cosine

documents = [
    "Ollama runs GGUF models locally and serves them over HTTP.",
    "LangChain chains prompts, models and tools together.",
    "A vector database stores embeddings for similarity search.",
    "Paris is the capital of France.",
]
manager = ModelManager()
vectors = manager.batch_embed(documents)
query = manager.embed("Where do I keep embeddings for retrieval?")
for score, text in sorted(((cosine(query, v), d) for v, d in zip(vectors, documents, strict=True)),
                          reverse=True):
    print(f"{score:.3f}  {text}")
