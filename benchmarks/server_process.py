"""``adam serve`` as a subprocess on a free loopback port, for the server benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx


class AdamServe:
    """``with AdamServe("--api-key", "k") as url:`` runs ``adam serve <args>`` until the
    block ends; ``process`` is the subprocess (for its memory)."""

    def __init__(self, *args: str) -> None:
        self.args = args

    def __enter__(self) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adam_integrations.cli", "serve", "--port", str(port),
             "--log-level", "warning", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("adam serve did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class LlamaCppPythonServer:
    """``with LlamaCppPythonServer(gguf) as base_url:`` runs llama-cpp-python's
    OpenAI-compatible server (``python -m llama_cpp.server``) on a free loopback port."""

    def __init__(self, gguf: str, alias: str = "smollm2") -> None:
        self.gguf, self.alias = gguf, alias

    def __enter__(self) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", self.gguf, "--model_alias",
             self.alias, "--port", str(port), "--n_ctx", "4096", "--interrupt_requests",
             "false"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("llama_cpp.server did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
