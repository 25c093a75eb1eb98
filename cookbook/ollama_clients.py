"""Serve this package's models over the Ollama API and use them from Ollama clients.

`adam serve` speaks Ollama's REST API, so LangChain's ChatOllama and OllamaEmbeddings,
LlamaIndex's Ollama classes, the `ollama` package and editor plugins work unchanged.
Here the server runs on a free port for the example; normally `adam serve` in a terminal.
"""

import socket
import subprocess
import sys
import time

import httpx
from langchain_ollama import ChatOllama, OllamaEmbeddings

with socket.socket() as sock:  # a free port, so the example never clashes with Ollama
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
server = subprocess.Popen([sys.executable, "-m", "adam_integrations.cli", "serve",
                           "--port", str(port), "--log-level", "warning"])
base_url = f"http://127.0.0.1:{port}"
try:
    for _ in range(300):  # wait until it answers
        try:
            httpx.get(f"{base_url}/api/version", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)

    llm = ChatOllama(model="smollm2:135m", base_url=base_url, temperature=0, num_predict=40)
    for chunk in llm.stream("What is the capital of France?"):
        print(chunk.content, end="", flush=True)
    print()

    embeddings = OllamaEmbeddings(model="all-minilm:l6-v2", base_url=base_url)
    vector = embeddings.embed_query("a vector for this sentence")
    print(f"embedding: {len(vector)} dimensions")
    models = httpx.get(f"{base_url}/api/tags").json()["models"]
    print("served:", ", ".join(m["name"] for m in models))
finally:
    server.terminate()
    server.wait(timeout=30)
