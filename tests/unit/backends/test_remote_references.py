"""Model references for serving engines: ``<engine>:<model>[@<base url>]``."""

from __future__ import annotations

import pytest

from adam_integrations.core.errors import ModelNotFoundError
from adam_integrations.core.registry import registry
from adam_integrations.core.resolver import resolve


@pytest.mark.parametrize(("reference", "model", "url", "engine"), [
    ("vllm:Qwen/Qwen3-32B@http://gpu-box:8000/v1", "Qwen/Qwen3-32B", "http://gpu-box:8000/v1",
     "vllm"),
    ("vllm:Qwen/Qwen3-8B", "Qwen/Qwen3-8B", "http://127.0.0.1:8000/v1", "vllm"),
    ("sglang:Qwen/Qwen3-8B", "Qwen/Qwen3-8B", "http://127.0.0.1:30000/v1", "sglang"),
    ("llamacpp-server:qwen3@https://box/v1/", "qwen3", "https://box/v1", "llamacpp-server"),
    ("openai:smollm2:135m@http://127.0.0.1:11434/v1", "smollm2:135m",
     "http://127.0.0.1:11434/v1", "openai"),
    ("openai:user@example.com/model", "user@example.com/model", "https://api.openai.com/v1",
     "openai"),
])
def test_engine_references_resolve_to_a_remote_source(reference, model, url, engine,
                                                      monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    source = resolve(reference)
    assert (source.kind, source.location, source.endpoint, source.engine) == (
        "remote", model, url, engine)
    choice = registry.choose("auto", source)
    assert choice.backend_class.name == engine and url in choice.reason


def test_openai_base_url_is_the_default_for_openai(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxy:4000/v1")
    assert resolve("openai:gpt-4o-mini").endpoint == "http://proxy:4000/v1"
    assert resolve("vllm:m").endpoint == "http://127.0.0.1:8000/v1"  # vLLM's own default


def test_engine_spellings_and_a_missing_model():
    assert registry.get("llama-server").name == "llamacpp-server"
    with pytest.raises(ModelNotFoundError, match="name the model served by vllm"):
        resolve("vllm:@http://box:8000/v1")
