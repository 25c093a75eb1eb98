"""The automatic backend choice (``model_type="auto"``, the default everywhere) and the
one line that explains it."""

from __future__ import annotations

import pytest

from adam_integrations import InvalidRequestError, ModelManager, registry, resolve
from adam_integrations.backends.local.huggingface import HuggingFaceModel
from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.core import hardware
from adam_integrations.core import registry as registry_module


def test_on_this_cpu_machine_a_gguf_runs_on_llama_cpp_and_the_explanation_says_why():
    assert hardware.gpu_kind() is None  # CI and the developers' machines have no GPU
    manager = ModelManager()
    assert manager.backend_class is LlamaCppModel
    assert manager.explanation.endswith(
        "on llamacpp: a GGUF on a machine without a GPU runs fastest on llama.cpp")


def test_safetensors_models_run_on_transformers(embedding_folder):
    choice = registry.choose("auto", resolve(str(embedding_folder)))
    assert choice.backend_class is HuggingFaceModel


def test_with_a_gpu_that_llama_cpp_cannot_use_a_gguf_goes_to_transformers(monkeypatch):
    monkeypatch.setattr(registry_module, "gpu_kind", lambda: "cuda")
    monkeypatch.setattr(registry_module, "_llama_cpp_offloads", lambda: False)
    choice = registry.choose("auto", resolve(None))
    assert choice.backend_class is HuggingFaceModel
    assert "cuda GPU is present and this llama.cpp build runs on the CPU only" in choice.reason


def test_with_a_gpu_llama_cpp_can_use_a_gguf_stays_on_llama_cpp(monkeypatch):
    monkeypatch.setattr(registry_module, "gpu_kind", lambda: "cuda")
    monkeypatch.setattr(registry_module, "_llama_cpp_offloads", lambda: True)
    choice = registry.choose("auto", resolve(None))
    assert choice.backend_class is LlamaCppModel and "on the cuda GPU" in choice.reason


def test_without_llama_cpp_python_a_gguf_goes_to_transformers_with_the_install_hint(
        monkeypatch):
    real = registry_module.importlib.util.find_spec
    monkeypatch.setattr(registry_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    choice = registry.choose("auto", resolve(None))
    assert choice.backend_class is HuggingFaceModel and "[llamacpp]" in choice.reason


def test_backend_options_pick_the_backend_that_takes_them():
    assert registry.choose("auto", resolve(None), {"dtype": "float32"}).backend_class \
        is HuggingFaceModel
    assert registry.choose("auto", resolve(None), {"n_ctx": 2048}).backend_class \
        is LlamaCppModel
    with pytest.raises(InvalidRequestError, match="no backend can run"):
        registry.choose("auto", resolve(None), {"dtype": "float32", "n_ctx": 2048})
    with pytest.raises(InvalidRequestError, match="takes no option 'dtype'"):
        registry.choose("llamacpp", resolve(None), {"dtype": "float32"})


def test_the_embedding_model_keeps_its_own_backend_under_a_llama_cpp_chat_model():
    manager = ModelManager(model_type="llamacpp", n_ctx=1024)
    assert isinstance(manager.embedder, HuggingFaceModel)  # all-MiniLM is safetensors
    assert "transformers runs safetensors" in manager.embedding_explanation


def test_the_gpu_check_honours_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert hardware.gpu_kind() is None or hardware.gpu_kind() == "metal"
