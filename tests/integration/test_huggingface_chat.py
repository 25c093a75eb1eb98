"""What is particular to HuggingFaceModel on the embedded SmolLM2 GGUF (the behaviour every
backend shares is in test_chat.py): conversion cache, info, clean exit."""

from __future__ import annotations

import time

import pytest

from adam_integrations import (
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.backends.huggingface import HuggingFaceModel

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


def test_a_second_load_of_a_gguf_reuses_the_cached_conversion(chat_model, chat_gguf_path):
    assert chat_model.info().details["from_conversion_cache"] is False
    again = HuggingFaceModel(str(chat_gguf_path))
    try:
        assert again.info().details["from_conversion_cache"] is True
        assert again.chat(QUESTION, max_tokens=8, **GREEDY).text == chat_model.chat(
            QUESTION, max_tokens=8, **GREEDY).text
    finally:
        again.unload()


def test_ollama_references_explain_they_need_another_route():
    with pytest.raises(ModelNotFoundError, match="Ollama's store"):
        HuggingFaceModel("ollama:qwen3:0.6b")


def test_a_program_exiting_with_an_open_stream_exits_promptly_and_cleanly(chat_model):
    import subprocess
    import sys

    script = (
        "from adam_integrations.backends.huggingface import HuggingFaceModel\n"
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
