"""Servers as subprocesses on free loopback ports, for the server benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx


class _ServerProcess:
    """Runs ``command(port)`` until the ``with`` block ends; ``process`` is the
    subprocess (for its memory); entering returns the URL once ``probe`` answers 200."""

    name = "the server"

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def urls(self, port: int) -> tuple[str, str]:
        """The URL to return and the one to probe."""
        raise NotImplementedError

    def __enter__(self) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.process = subprocess.Popen(self.command(port), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        url, probe = self.urls(port)
        for _ in range(600):
            try:
                if httpx.get(probe, timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.1)
        self.process.terminate()
        raise RuntimeError(f"{self.name} did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class AdamServe(_ServerProcess):
    """``with AdamServe("--api-key", "k") as url:`` runs ``adam serve <args>``."""

    name = "adam serve"

    def __init__(self, *args: str) -> None:
        self.args = args

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "adam_integrations.cli", "serve", "--port", str(port),
                "--log-level", "warning", *self.args]

    def urls(self, port: int) -> tuple[str, str]:
        return (f"http://127.0.0.1:{port}",) * 2


class LlamaCppPythonServer(_ServerProcess):
    """``with LlamaCppPythonServer(gguf) as base_url:`` runs llama-cpp-python's
    OpenAI-compatible server (``python -m llama_cpp.server``)."""

    name = "llama_cpp.server"

    def __init__(self, gguf: str, alias: str = "smollm2") -> None:
        self.gguf, self.alias = gguf, alias

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", self.gguf,
                "--model_alias", self.alias, "--port", str(port), "--n_ctx", "4096",
                "--interrupt_requests", "false"]

    def urls(self, port: int) -> tuple[str, str]:
        return f"http://127.0.0.1:{port}/v1", f"http://127.0.0.1:{port}/v1/models"
