"""What is particular to HuggingFaceModel on the embedded SmolLM2 GGUF (the behaviour every
backend shares is in test_chat.py): conversion cache, info, clean exit."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from adam_integrations import (
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.backends.local.huggingface import HuggingFaceModel
from adam_integrations.backends.local.huggingface.gguf_conversion import CONVERSION_MARKER

QUESTION = [{"role": "user", "content": "Name three colors of the rainbow."}]
GREEDY = {"temperature": 0.0}


def test_a_chat_model_refuses_to_embed_and_says_what_to_use(chat_model):
    with pytest.raises(UnsupportedOperationError, match="not an embedding model"):
        chat_model.embed(["hello"])


def test_info_describes_the_real_model(chat_model, chat_gguf_path):
    info = chat_model.info()
    assert (info.family, info.backend, info.format) == ("llama", "huggingface", "gguf")
    assert info.context_window == 8192
    assert 130_000_000 < info.parameter_count < 140_000_000
    assert "chat" in info.capabilities and info.path == str(chat_gguf_path.resolve())
    assert info.quantization == "Q4_1"


@pytest.fixture(scope="module")
def tiny_conversion(tiny_llama_gguf, tmp_path_factory) -> tuple[Path, bool, str]:
    """The tiny GGUF converted once into a conversion cache of its own (whichever test
    converted a GGUF first in the session's cache): the cache, whether that load came from
    the cache, and its greedy answer."""
    root = tmp_path_factory.mktemp("conversions") / "gguf-conversions"
    first = HuggingFaceModel(str(tiny_llama_gguf), conversion_cache_dir=root)
    try:
        return (root, first.info().details["from_conversion_cache"],
                first.chat(QUESTION, max_tokens=8, **GREEDY).text)
    finally:
        first.unload()


def test_a_second_load_of_a_gguf_reuses_the_cached_conversion(tiny_llama_gguf,
                                                               tiny_conversion):
    root, first_from_cache, answer = tiny_conversion
    assert first_from_cache is False
    again = HuggingFaceModel(str(tiny_llama_gguf), conversion_cache_dir=root)
    try:
        assert again.info().details["from_conversion_cache"] is True
        assert again.chat(QUESTION, max_tokens=8, **GREEDY).text == answer
    finally:
        again.unload()


def test_the_conversion_cache_is_named_after_the_transformers_that_wrote_it(chat_model):
    import transformers

    folder = chat_model.engine(load=False).folder
    assert folder.parent.name == "gguf-conversions"
    assert folder.name.endswith(f"-transformers-{transformers.__version__}")
    marker = json.loads((folder / CONVERSION_MARKER).read_text())
    assert f"transformers-{transformers.__version__}" in marker["producer"]


def test_a_cached_conversion_that_no_longer_loads_is_converted_again_and_replaced(
        tmp_path, tiny_llama_gguf, tiny_conversion):
    """As after a transformers downgrade: the cached folder names a model type this
    transformers does not know. The entry is converted again, not reported as broken."""
    cached_root, _, answer = tiny_conversion
    root = tmp_path / "gguf-conversions"
    shutil.copytree(cached_root, root)
    [cached] = list(root.iterdir())
    config = cached / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()),
                                  "model_type": "no-such-model-type"}))
    model = HuggingFaceModel(str(tiny_llama_gguf), conversion_cache_dir=root)
    try:
        assert model.info().details["from_conversion_cache"] is False
        assert "no-such-model-type" not in config.read_text()  # replaced in place
        assert [p.name for p in root.iterdir()] == [cached.name]  # nothing left beside it
        assert model.chat(QUESTION, max_tokens=8, **GREEDY).text == answer
    finally:
        model.unload()


def test_ollama_references_explain_they_need_another_route():
    with pytest.raises(ModelNotFoundError, match="Ollama's store"):
        HuggingFaceModel("ollama:qwen3:0.6b")


def test_a_program_exiting_with_an_open_stream_exits_promptly_and_cleanly(chat_model):
    import subprocess
    import sys

    script = (
        "from adam_integrations.backends.local.huggingface import HuggingFaceModel\n"
        "stream = HuggingFaceModel('smollm2').stream_chat(\n"
        "    [{'role': 'user', 'content': 'Tell a very long story.'}], max_tokens=4000)\n"
        "print(next(stream).text)\n"
    )
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.strip()
    assert time.perf_counter() - started < 60  # 4000 tokens would take minutes
