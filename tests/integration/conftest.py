"""Fixtures of the integration tier: the real embedded models, loaded once per test
session, and a real ``adam serve`` subprocess on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adam_integrations import ModelBackend, ModelManager
from adam_integrations.backends.local.huggingface import HuggingFaceModel
from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.catalog.embedded import EMBEDDED_CHAT, EMBEDDED_EMBEDDING
from adam_integrations.sharing.digest import file_sha256
from tests.fixtures.qwen3_models import Qwen3Fixtures, build
from tests.fixtures.qwen3_parts import FETCH_COMMAND, find_parts
from tests.fixtures.qwen35_models import Qwen35Fixtures
from tests.fixtures.qwen35_models import build as build_qwen35
from tests.helpers import wait_until

BACKENDS = ("huggingface", "llamacpp")
"""The in-process backends every core behaviour test runs on."""

REMOTES = ("llamacpp-server", "adam-serve")
"""The servers the OpenAI-compatible backend runs the core chat tests against:
llama-cpp-python's ``llama_cpp.server`` and ``adam serve``'s ``/v1``, both on loopback
with the embedded GGUF."""


@pytest.fixture(scope="session")
def manager() -> Iterator[ModelManager]:
    """``ModelManager()`` on the embedded defaults (the chat model on llama.cpp, as chosen
    automatically here), loaded once for the whole session."""
    with ModelManager() as loaded:
        loaded.load()
        yield loaded


@pytest.fixture(scope="session")
def hf_manager() -> Iterator[ModelManager]:
    """The embedded defaults with the chat model on transformers."""
    with ModelManager(model_type="huggingface") as loaded:
        loaded.load()
        yield loaded


@pytest.fixture(scope="session", params=BACKENDS)
def backend_manager(request: pytest.FixtureRequest) -> ModelManager:
    """The embedded chat model on each in-process backend in turn."""
    name = request.param
    return request.getfixturevalue("hf_manager" if name == "huggingface" else "manager")


@pytest.fixture(scope="session")
def backend_model(backend_manager: ModelManager) -> ModelBackend:
    """The chat model's backend object, on each in-process backend in turn."""
    return backend_manager.backend


@pytest.fixture(scope="session")
def chat_model(hf_manager: ModelManager) -> HuggingFaceModel:
    """The embedded SmolLM2-135M-Instruct GGUF on transformers."""
    assert isinstance(hf_manager.backend, HuggingFaceModel)
    return hf_manager.backend


@pytest.fixture(scope="session")
def embedder(manager: ModelManager) -> HuggingFaceModel:
    """The embedded all-MiniLM-L6-v2 (the manager's copy)."""
    assert isinstance(manager.embedder, HuggingFaceModel)
    manager.embedder.load()
    return manager.embedder


@pytest.fixture(scope="session")
def fp32_embedder(embedding_folder: Path) -> Iterator[HuggingFaceModel]:
    """The embedded all-MiniLM-L6-v2 in fp32: sentence-transformers' exact vectors."""
    model = HuggingFaceModel(str(embedding_folder), dtype="float32")
    yield model
    model.unload()


@pytest.fixture(scope="session")
def chat_gguf_path() -> Path:
    return EMBEDDED_CHAT.require_path()


@pytest.fixture(scope="session")
def smollm2_checkpoint(chat_gguf_path) -> Path:
    """The embedded SmolLM2 as a transformers checkpoint (safetensors, F32): the folder the
    transformers backend converts the GGUF to once per session."""
    from adam_integrations.backends.local.huggingface.gguf_conversion import converted_gguf

    return converted_gguf(chat_gguf_path)[0]


@pytest.fixture(scope="session")
def tiny_llama_gguf(tmp_path_factory, smollm2_checkpoint) -> Path:
    """A tiny random-weight Llama with SmolLM2's tokenizer and template as an F32 GGUF
    (``tests/fixtures/tiny_models.py``): for tests of converting a GGUF, which take
    seconds on it and half a minute on the embedded model."""
    from adam_integrations.sharing.checkpoint_gguf import write_gguf
    from tests.fixtures.tiny_models import tiny_llama

    root = tmp_path_factory.mktemp("tiny-llama-gguf")
    write_gguf(tiny_llama(root / "tiny-llama", smollm2_checkpoint), root / "tiny.gguf", "F32")
    return root / "tiny.gguf"


@pytest.fixture(scope="session")
def embedding_folder() -> Path:
    return EMBEDDED_EMBEDDING.require_path()


DATA = Path(__file__).parent / "data"


def _with_template(backend: str, gguf: Path, template: str) -> ModelBackend:
    backend_class = LlamaCppModel if backend == "llamacpp" else HuggingFaceModel
    return backend_class(str(gguf), chat_template=(DATA / template).read_text())


@pytest.fixture(scope="session", params=BACKENDS)
def qwen3_style_model(request, chat_gguf_path) -> Iterator[ModelBackend]:
    """The embedded model with a Qwen3-style chat template (tools, enable_thinking), on
    each in-process backend."""
    model = _with_template(request.param, chat_gguf_path, "qwen3_style_template.jinja")
    yield model
    model.unload()


@pytest.fixture(scope="session", params=BACKENDS)
def open_think_model(request, chat_gguf_path) -> Iterator[ModelBackend]:
    """The embedded model with a template whose generation prompt opens a think block, on
    each in-process backend."""
    model = _with_template(request.param, chat_gguf_path, "open_think_template.jinja")
    yield model
    model.unload()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServeProcess:
    """``adam serve <args>`` as a subprocess on a free loopback port, its output in
    ``log``; ``stop()`` sends SIGTERM and waits."""

    def __init__(self, log: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "adam_integrations.cli", "serve", "--port",
                 self.url.rsplit(":", 1)[1], "--log-level", "warning", *args],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

        def up() -> bool:
            try:
                return httpx.get(self.url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(up, timeout=60), log.read_text()[-3000:]

    def stop(self, timeout: float = 30) -> int:
        self.process.terminate()
        return self.process.wait(timeout=timeout)


class LlamaCppServer:
    """llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) on a
    free loopback port, serving ``gguf`` as ``smollm2``."""

    def __init__(self, gguf: Path, log: Path) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
                 "--model_alias", "smollm2", "--port", str(port), "--n_ctx", "2048",
                 "--n_threads", str(min(4, os.cpu_count() or 1)), "--seed", "0",
                 # by default a new request cuts off the one running (empty answers)
                 "--interrupt_requests", "false"],
                stdout=out, stderr=subprocess.STDOUT)

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/models", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(up, timeout=60), log.read_text()[-3000:]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def llama_server(chat_gguf_path, session_cache: Path) -> Iterator[str]:
    """The base URL of llama-cpp-python's server with the embedded GGUF."""
    running = LlamaCppServer(chat_gguf_path, session_cache / "llama-server.log")
    yield running.url
    running.stop()


@pytest.fixture(scope="session", params=[*BACKENDS, *REMOTES])
def chat_backend(request: pytest.FixtureRequest) -> ModelBackend:
    """The embedded chat model on each in-process backend and, through the
    OpenAI-compatible backend, on each server of ``REMOTES``."""
    from adam_integrations.backends.remote.openai_compat import (
        LlamaServerModel,
        OpenAICompatibleModel,
    )

    if request.param == "llamacpp-server":
        return LlamaServerModel(f"smollm2@{request.getfixturevalue('llama_server')}")
    if request.param == "adam-serve":
        return OpenAICompatibleModel(f"smollm2:135m@{request.getfixturevalue('server')}/v1")
    manager = request.getfixturevalue("hf_manager" if request.param == "huggingface"
                                      else "manager")
    return manager.backend


@pytest.fixture(scope="session")
def server(session_cache: Path) -> Iterator[str]:
    """The URL of an ``adam serve`` subprocess, up for the whole test session; the tests'
    model files (the session cache, the Qwen3 fixtures) may be named by path."""
    running = ServeProcess(session_cache / "server.log", "--max-body-mb", "1",
                           "--models-dir", str(session_cache),
                           "--models-dir", str(FIXTURE_CACHE))
    yield running.url
    running.stop()


@pytest.fixture(scope="session")
def thinking_gguf(chat_gguf_path, session_cache: Path) -> Path:
    """A copy of the embedded GGUF whose own chat template opens a think block, so any
    client (e.g. through ``adam serve``) gets reasoning from it."""
    target = session_cache / "smollm2-thinking.gguf"
    if not target.exists():
        subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", "--force",
                        "--chat-template-file", str(DATA / "open_think_template.jinja"),
                        str(chat_gguf_path), str(target)], check=True, capture_output=True)
    return target


FIXTURE_CACHE = Path(os.environ.get("ADAM_TEST_FIXTURES") or
                     Path.home() / ".cache" / "adam-integrations" / "test-fixtures")
"""Built Qwen3 fixture models, kept across sessions (they take ~30 s to build)."""


@pytest.fixture(scope="session")
def qwen3() -> Qwen3Fixtures:
    """Tiny random-weight Qwen3 models with the real tokenizer and official template
    (``tests/fixtures/qwen3_models.py``); skips when the real parts are not cached."""
    parts = find_parts()
    if parts is None:
        pytest.skip(f"the real Qwen3 parts are not cached; fetch them with {FETCH_COMMAND}")
    return build(parts, FIXTURE_CACHE)


HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def official_gguf_in_hf_cache(qwen3, tmp_path, monkeypatch) -> Path:
    """The dense fixture laid out as Qwen's official ``Qwen/Qwen3-1.7B-GGUF`` file in an
    empty Hugging Face cache (as huggingface_hub stores it), and an empty Ollama store."""
    repo = tmp_path / "hub" / "models--Qwen--Qwen3-1.7B-GGUF"
    (repo / "blobs").mkdir(parents=True)
    blob = repo / "blobs" / file_sha256(qwen3.dense_gguf)
    shutil.copyfile(qwen3.dense_gguf, blob)
    snapshot = repo / "snapshots" / HUB_COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "Qwen3-1.7B-Q8_0.gguf").symlink_to(Path("../..") / "blobs" / blob.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(HUB_COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    return blob


@pytest.fixture(scope="session")
def qwen35() -> Qwen35Fixtures:
    """Tiny random-weight Qwen3.5 models (hybrid attention) as safetensors and as GGUFs
    made by llama.cpp's converter (``tests/fixtures/qwen35_models.py``); skips when the
    real parts are not cached."""
    parts = find_parts()
    if parts is None:
        pytest.skip(f"the real Qwen parts are not cached; fetch them with {FETCH_COMMAND}")
    return build_qwen35(parts, FIXTURE_CACHE)
