"""A LlamaIndex RAG query engine on local models: AdamEmbedding + VectorStoreIndex + AdamLLM."""

from llama_index.core import Document, Settings, VectorStoreIndex

from adam_integrations.llama_index import AdamEmbedding, AdamLLM

Settings.llm = AdamLLM(temperature=0.0, max_tokens=64)   # the default model for this machine
Settings.embed_model = AdamEmbedding()

documents = [
    Document(text="The secret code word of the Adam project is PINEAPPLE.",
             metadata={"source": "secrets.txt"}),
    Document(text="adam-integrations runs GGUF and transformers models locally.",
             metadata={"source": "readme.txt"}),
]
engine = VectorStoreIndex.from_documents(documents).as_query_engine(similarity_top_k=1,
                                                                    streaming=True)
response = engine.query("What is the secret code word of the Adam project?")
for piece in response.response_gen:
    print(piece, end="", flush=True)
print("\nsource:", response.source_nodes[0].node.metadata["source"])
