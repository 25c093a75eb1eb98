"""Embeddings: one text, a batch, and a query ranked against documents."""

import math

from adam_integrations import ModelManager

manager = ModelManager()
vector = manager.embed("Local models keep data on your machine.")
print(f"{len(vector)} dimensions; {manager.embedding_explanation}")

documents = ["GGUF files hold quantized weights.", "Paris is in France.",
             "LangChain composes LLM calls.", "Embeddings map text to vectors."]
vectors = manager.batch_embed(documents)                   # one call, length-sorted batches
query = manager.batch_embed(["What turns text into numbers?"], kind="query")[0]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


for score, text in sorted(((cosine(query, v), d) for v, d in zip(vectors, documents,
                                                                  strict=True)), reverse=True):
    print(f"{score:.3f}  {text}")
