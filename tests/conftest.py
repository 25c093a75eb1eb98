"""Settings for the whole test session: the network is closed except loopback
(pytest-socket, see pyproject.toml), and everything this package writes (GGUF
conversions, the hash cache) goes to a per-session folder, so a run never touches the
user's own cache; the Hugging Face cache and Ollama's store point into it too, empty
until a test lays out files there.

Two tiers: ``tests/unit`` (seconds: the scripted backend, no model) and
``tests/integration`` (the real embedded models and real servers: the proof).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_CACHE = Path(tempfile.mkdtemp(prefix="adam-test-cache-"))
# The GGUF conversion alone is a few hundred MB: leave nothing behind.
atexit.register(shutil.rmtree, _SESSION_CACHE, ignore_errors=True)
os.environ["ADAM_CACHE_DIR"] = str(_SESSION_CACHE)
# Model stores of this machine's user are never read: tests build their own.
os.environ["HF_HUB_CACHE"] = str(_SESSION_CACHE / "hf-hub")
os.environ["OLLAMA_MODELS"] = str(_SESSION_CACHE / "ollama-models")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def session_cache() -> Path:
    """The folder ADAM_CACHE_DIR points to for this test session."""
    return _SESSION_CACHE
