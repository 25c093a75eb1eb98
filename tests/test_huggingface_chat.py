"""HuggingFaceModel generation on the real embedded SmolLM2 GGUF."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from adam_integrations import (
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.backends import compute
from adam_integrations.backends.huggingface import HuggingFaceModel
from tests.helpers import cancel_after_first_item, compute_idle_soon

QUESTION = [{"role": "user", "content": "Name three colors of the rainbow."}]
GREEDY = {"temperature": 0.0}




@pytest.fixture(scope="module")
def reference_answer(chat_model):
    """A greedy 24-token answer, to compare other calls against."""
    return chat_model.chat(QUESTION, max_tokens=24, **GREEDY)


def test_streaming_yields_text_pieces_then_a_final_chunk_with_usage(chat_model):
    chunks = list(chat_model.stream_chat(QUESTION, max_tokens=12, **GREEDY))
    assert sum(1 for c in chunks if c.text) >= 3
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    assert chunks[-1].finish_reason in ("stop", "length") and chunks[-1].usage is not None


def test_non_streaming_is_the_stream_collected(chat_model, reference_answer):
    streamed = "".join(c.text for c in chat_model.stream_chat(QUESTION, max_tokens=24, **GREEDY))
    assert streamed == reference_answer.text and streamed.strip()


def test_usage_counts_are_exact(chat_model):
    completion = chat_model.chat(QUESTION, max_tokens=5, **GREEDY)
    prompt = chat_model.render_chat([_msg(m) for m in QUESTION])
    tokenizer = chat_model._ensure_loaded().tokenizer
    expected_prompt_tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert completion.usage.prompt_tokens == expected_prompt_tokens
    assert completion.usage.completion_tokens == 5
    assert completion.finish_reason == "length"
    assert completion.usage.total_seconds > 0 and completion.usage.tokens_per_second > 0


def test_an_end_of_turn_token_finishes_with_stop(chat_model):
    completion = chat_model.chat([{"role": "user", "content": "Say OK."}], max_tokens=64,
                                 **GREEDY)
    assert completion.finish_reason == "stop"
    assert completion.usage.completion_tokens < 64
    assert "<|im_end|>" not in completion.text


def test_a_stop_string_ends_generation_and_is_not_returned(chat_model, reference_answer):
    text = reference_answer.text
    words = text.split()
    stop = " " + words[len(words) // 2]
    assert stop in text
    completion = chat_model.chat(QUESTION, max_tokens=24, stop=[stop], **GREEDY)
    assert completion.text == text[: text.index(stop)]
    assert completion.finish_reason == "stop"
    assert completion.usage.completion_tokens < reference_answer.usage.completion_tokens


def test_a_multi_token_stop_string_is_cut_cleanly(chat_model, reference_answer):
    text = reference_answer.text
    start = len(text) // 3
    stop = text[start:start + 9]
    completion = chat_model.chat(QUESTION, max_tokens=24, stop=stop, **GREEDY)
    assert completion.text == text[: text.index(stop)]


def test_breaking_out_of_a_stream_stops_generation_and_leaves_nothing_running(chat_model):
    stream = chat_model.stream_chat(QUESTION, max_tokens=200, **GREEDY)
    for chunk in stream:
        if chunk.text:
            break
    stream.close()
    assert compute.idle()
    assert [t for t in threading.enumerate() if t.name.startswith("adam-stream")] == []


async def test_async_streaming_matches_sync_streaming(chat_model, reference_answer):
    pieces = [c.text async for c in chat_model.astream_chat(QUESTION, max_tokens=24, **GREEDY)]
    assert "".join(pieces) == reference_answer.text
    completion = await chat_model.achat(QUESTION, max_tokens=24, **GREEDY)
    assert completion.text == reference_answer.text


async def test_async_generation_does_not_block_the_event_loop(chat_model):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await chat_model.achat(QUESTION, max_tokens=30, **GREEDY)
    elapsed = time.perf_counter() - started
    tick_task.cancel()
    assert ticks >= max(2, int(elapsed / 0.01) // 3)


async def test_cancelling_an_async_stream_stops_generation(chat_model):
    await cancel_after_first_item(
        lambda: chat_model.astream_chat(QUESTION, max_tokens=400, **GREEDY))
    assert await compute_idle_soon()


def test_concurrent_calls_never_interleave(chat_model):
    prompts = [[{"role": "user", "content": "Describe the sea."}],
               [{"role": "user", "content": "List some fruits."}]]
    expected = [chat_model.chat(p, max_tokens=16, **GREEDY).text for p in prompts]
    results: dict[int, str] = {}

    def worker(i: int) -> None:
        results[i] = chat_model.chat(prompts[i % 2], max_tokens=16, **GREEDY).text

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(4)] == [expected[0], expected[1]] * 2


def test_a_seed_makes_sampling_reproducible(chat_model):
    options = {"max_tokens": 12, "temperature": 1.2, "top_k": 50, "seed": 1234}
    first = chat_model.chat(QUESTION, **options).text
    assert chat_model.chat(QUESTION, **options).text == first


def test_raw_completion_continues_the_prompt_without_a_template(chat_model):
    completion = chat_model.complete("The capital of France is", max_tokens=6, **GREEDY)
    assert completion.text.strip() and completion.usage.completion_tokens <= 6


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda m: m.chat([], max_tokens=5), "at least one user message"),
        (lambda m: m.chat(QUESTION, max_tokens=0), "max_tokens must be >= 1"),
        (lambda m: m.chat(QUESTION, temperature=-1), "temperature must be >= 0"),
        (lambda m: m.complete("", max_tokens=5), "prompt is empty"),
    ],
)
def test_bad_requests_fail_before_the_model_runs(chat_model, call, error):
    with pytest.raises(InvalidRequestError, match=error):
        call(chat_model)


def test_a_prompt_longer_than_the_context_window_is_refused(chat_model):
    too_long = [{"role": "user", "content": "word " * 9000}]
    with pytest.raises(InvalidRequestError, match="context window"):
        chat_model.chat(too_long, max_tokens=5)


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


def test_unload_frees_the_model_and_the_next_call_loads_it_again(chat_gguf_path):
    model = HuggingFaceModel(str(chat_gguf_path))
    model.load()
    model.unload()
    assert not model.is_loaded
    reloaded = model.chat(QUESTION, max_tokens=2, **GREEDY).usage
    assert reloaded.completion_tokens == 2 and reloaded.load_seconds > 0
    assert model.chat(QUESTION, max_tokens=2, **GREEDY).usage.load_seconds == 0
    model.unload()


def test_ollama_references_explain_they_need_another_route():
    with pytest.raises(ModelNotFoundError, match="Ollama's store"):
        HuggingFaceModel("ollama:qwen3:0.6b")


def _msg(m):
    from adam_integrations import ChatMessage

    return ChatMessage.coerce(m)


def test_a_truncated_gguf_is_refused_before_transformers_reads_it(tmp_path, chat_gguf_path):
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(chat_gguf_path.read_bytes()[:2000])
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        HuggingFaceModel(str(truncated)).load()


def test_a_gguf_architecture_transformers_cannot_read_is_named(tmp_path):
    import gguf
    import numpy

    path = tmp_path / "unknown-arch.gguf"
    writer = gguf.GGUFWriter(str(path), arch="someoddarch")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", numpy.zeros((4, 4), dtype="float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match=r"architecture 'someoddarch'.*cannot load"):
        HuggingFaceModel(str(path)).load()


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
