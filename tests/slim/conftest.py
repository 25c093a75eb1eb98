"""The slim install (``pip install adam-integrations``, no extras), checked in a venv of
its own (``make test-slim``, part of ``make test``): the framework adapters and the
remote backends work against ``adam serve`` started from the full install
(``ADAM_FULL_PYTHON``), and every part that needs an extra says which."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def full_server(tmp_path_factory) -> Iterator[str]:
    """``adam serve`` from the full install, serving the embedded models."""
    python = os.environ.get("ADAM_FULL_PYTHON")
    if not python:
        pytest.fail("ADAM_FULL_PYTHON names the full install's python (make test-slim sets "
                    "it)")
    url = f"http://127.0.0.1:{_free_port()}"
    log = Path(tmp_path_factory.mktemp("server")) / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen([python, "-m", "adam_integrations.cli", "serve", "--port",
                                    url.rsplit(":", 1)[1], "--log-level", "warning"],
                                   stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        process.terminate()
        pytest.fail(f"adam serve did not start:\n{log.read_text()[-3000:]}")
    yield url
    process.terminate()
    process.wait(timeout=30)
