"""The RAG chain of langchain_rag.py, with the chat model on a serving engine: the same
ChatAdam, pointed at an OpenAI-compatible server (here llama.cpp's, started for the
example with the embedded GGUF; on a cluster, vLLM or SGLang).

    python cookbook/scaling_out_rag.py                               # starts llama_cpp.server
    python cookbook/scaling_out_rag.py vllm:Qwen/Qwen3-8B@http://gpu-box:8000/v1
"""

import socket
import subprocess
import sys
import time

import httpx
from langchain_rag import QUESTION, rag_chain  # the chain of langchain_rag.py, next door

from adam_integrations.catalog.embedded import EMBEDDED_CHAT
from adam_integrations.langchain import ChatAdam


def start_llama_cpp_server() -> tuple[subprocess.Popen, str]:
    """llama-cpp-python's OpenAI-compatible server with the embedded GGUF, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(EMBEDDED_CHAT.require_path()),
         "--model_alias", "smollm2", "--port", str(port), "--interrupt_requests", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return server, f"llamacpp-server:smollm2@{url}"
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("llama_cpp.server did not start (pip install 'llama-cpp-python[server]')")


server, model = (None, sys.argv[1]) if len(sys.argv) > 1 else start_llama_cpp_server()
try:
    llm = ChatAdam(model=model, temperature=0.0, max_tokens=64)  # the only change
    print(f"chat model: {model}")
    for piece in rag_chain(llm).stream(QUESTION):
        print(piece, end="", flush=True)
    print()
finally:
    if server is not None:
        server.terminate()
        server.wait(timeout=30)
