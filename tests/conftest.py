"""Shared fixtures: the real embedded models, loaded once per test session.

The network is closed except loopback (pytest-socket, see pyproject.toml). Everything this
package writes (GGUF conversions, the hash cache) goes to a per-session folder, so a run
never touches the user's own cache, and the first load really converts.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_CACHE = Path(tempfile.mkdtemp(prefix="adam-test-cache-"))
os.environ["ADAM_CACHE_DIR"] = str(_SESSION_CACHE)
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from adam_integrations import ModelManager  # noqa: E402
from adam_integrations.backends.huggingface import HuggingFaceModel  # noqa: E402
from adam_integrations.catalog.embedded import EMBEDDED_CHAT, EMBEDDED_EMBEDDING  # noqa: E402


@pytest.fixture(scope="session")
def session_cache() -> Path:
    """The folder ADAM_CACHE_DIR points to for this test session."""
    return _SESSION_CACHE


@pytest.fixture(scope="session")
def manager() -> Iterator[ModelManager]:
    """A ModelManager on the embedded defaults, loaded once for the whole session."""
    with ModelManager() as loaded:
        loaded.load()
        yield loaded


@pytest.fixture(scope="session")
def chat_model(manager: ModelManager) -> HuggingFaceModel:
    """The embedded SmolLM2-135M-Instruct GGUF on transformers (the manager's copy)."""
    assert isinstance(manager.backend, HuggingFaceModel)
    return manager.backend


@pytest.fixture(scope="session")
def embedder(manager: ModelManager) -> HuggingFaceModel:
    """The embedded all-MiniLM-L6-v2 (the manager's copy)."""
    assert isinstance(manager.embedder, HuggingFaceModel)
    manager.embedder.load()
    return manager.embedder


@pytest.fixture(scope="session")
def chat_gguf_path() -> Path:
    return EMBEDDED_CHAT.require_path()


@pytest.fixture(scope="session")
def embedding_folder() -> Path:
    return EMBEDDED_EMBEDDING.require_path()


DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def qwen3_style_model(chat_gguf_path) -> Iterator[HuggingFaceModel]:
    """The embedded model with a Qwen3-style chat template (tools, enable_thinking)."""
    model = HuggingFaceModel(str(chat_gguf_path),
                             chat_template=(DATA / "qwen3_style_template.jinja").read_text())
    yield model
    model.unload()


@pytest.fixture(scope="session")
def open_think_model(chat_gguf_path) -> Iterator[HuggingFaceModel]:
    """The embedded model with a template whose generation prompt opens a think block."""
    model = HuggingFaceModel(str(chat_gguf_path),
                             chat_template=(DATA / "open_think_template.jinja").read_text())
    yield model
    model.unload()
