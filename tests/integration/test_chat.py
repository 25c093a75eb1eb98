"""Core chat behaviour, proven on every in-process backend (transformers and llama.cpp)
with the real embedded SmolLM2 GGUF: streaming, stop strings, exact usage, cancellation,
async, concurrency, sampling, raw completion and bad input. The tests on ``chat_backend``
also run through the OpenAI-compatible backend against llama-cpp-python's server and
``adam serve`` (what is about the model files themselves stays on the local backends)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from adam_integrations import AdamError, ChatMessage, InvalidRequestError, ModelLoadError
from tests.helpers import cancel_after_first_item, generation_idle, idle_soon

QUESTION = [{"role": "user", "content": "Name three colors of the rainbow."}]
GREEDY = {"temperature": 0.0}


@pytest.fixture(scope="module")
def reference_answer(chat_backend):
    """A greedy 24-token answer, to compare other calls against."""
    return chat_backend.chat(QUESTION, max_tokens=24, **GREEDY)


def test_streaming_yields_text_pieces_then_a_final_chunk_with_usage(chat_backend):
    chunks = list(chat_backend.stream_chat(QUESTION, max_tokens=12, **GREEDY))
    assert sum(1 for c in chunks if c.text) >= 3
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    assert chunks[-1].finish_reason in ("stop", "length") and chunks[-1].usage is not None


def test_non_streaming_is_the_stream_collected(chat_backend, reference_answer):
    streamed = "".join(c.text for c in chat_backend.stream_chat(QUESTION, max_tokens=24, **GREEDY))
    assert streamed == reference_answer.text and streamed.strip()


def test_usage_counts_are_exact(backend_model):
    completion = backend_model.chat(QUESTION, max_tokens=5, **GREEDY)
    prompt = backend_model.render_chat([ChatMessage.coerce(m) for m in QUESTION])
    assert completion.usage.prompt_tokens == backend_model.count_tokens(prompt)
    assert completion.usage.completion_tokens == 5
    assert completion.finish_reason == "length"
    assert completion.usage.total_seconds > 0 and completion.usage.tokens_per_second > 0


def test_an_end_of_turn_token_finishes_with_stop(chat_backend):
    completion = chat_backend.chat([{"role": "user", "content": "Say OK."}], max_tokens=64,
                                 **GREEDY)
    assert completion.finish_reason == "stop"
    assert completion.usage.completion_tokens < 64
    assert "<|im_end|>" not in completion.text


def test_a_stop_string_ends_generation_and_is_not_returned(chat_backend, reference_answer):
    text = reference_answer.text
    words = text.split()
    stop = " " + words[len(words) // 2]
    assert stop in text
    completion = chat_backend.chat(QUESTION, max_tokens=24, stop=[stop], **GREEDY)
    assert completion.text == text[: text.index(stop)]
    assert completion.finish_reason == "stop"
    assert completion.usage.completion_tokens < reference_answer.usage.completion_tokens


def test_a_multi_token_stop_string_is_cut_cleanly(chat_backend, reference_answer):
    text = reference_answer.text
    start = len(text) // 3
    stop = text[start:start + 9]
    completion = chat_backend.chat(QUESTION, max_tokens=24, stop=stop, **GREEDY)
    assert completion.text == text[: text.index(stop)]


def test_breaking_out_of_a_stream_stops_generation_and_leaves_nothing_running(chat_backend):
    stream = chat_backend.stream_chat(QUESTION, max_tokens=200, **GREEDY)
    for chunk in stream:
        if chunk.text:
            break
    stream.close()
    assert generation_idle(chat_backend)
    assert [t for t in threading.enumerate() if t.name.startswith("adam-stream")] == []


async def test_async_streaming_matches_sync_streaming(chat_backend, reference_answer):
    pieces = [c.text async for c in chat_backend.astream_chat(QUESTION, max_tokens=24, **GREEDY)]
    assert "".join(pieces) == reference_answer.text
    completion = await chat_backend.achat(QUESTION, max_tokens=24, **GREEDY)
    assert completion.text == reference_answer.text


async def test_async_generation_does_not_block_the_event_loop(chat_backend):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await chat_backend.achat(QUESTION, max_tokens=30, **GREEDY)
    elapsed = time.perf_counter() - started
    tick_task.cancel()
    assert ticks >= max(2, int(elapsed / 0.01) // 3)


async def test_cancelling_an_async_stream_stops_generation(chat_backend):
    await cancel_after_first_item(
        lambda: chat_backend.astream_chat(QUESTION, max_tokens=400, **GREEDY))
    assert await idle_soon(chat_backend)


def test_concurrent_calls_never_interleave(chat_backend):
    # Exact text is not compared: llama.cpp's greedy output depends on how much of the
    # prompt its cache already held (batched and single-token evaluation round
    # differently), as in llama.cpp's server and Ollama. Interleaved generations would
    # mix the topics.
    prompts = [([{"role": "user", "content": "Describe the sea."}], ("sea", "ocean")),
               ([{"role": "user", "content": "List some fruits."}],
                ("fruit", "banana", "apple", "orange"))]
    results: dict[int, str] = {}

    def worker(i: int) -> None:
        results[i] = chat_backend.chat(prompts[i % 2][0], max_tokens=16, **GREEDY).text

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        words = prompts[i % 2][1]
        other = prompts[1 - i % 2][1]
        text = results[i].lower()
        assert any(w in text for w in words) and not any(w in text for w in other), text

def test_a_seed_makes_sampling_reproducible(chat_backend):
    options = {"max_tokens": 12, "temperature": 1.2, "top_k": 50, "seed": 1234}
    first = chat_backend.chat(QUESTION, **options).text
    assert chat_backend.chat(QUESTION, **options).text == first


def test_raw_completion_continues_the_prompt_without_a_template(chat_backend):
    completion = chat_backend.complete("The capital of France is", max_tokens=6, **GREEDY)
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
def test_bad_requests_fail_before_the_model_runs(chat_backend, call, error):
    with pytest.raises(InvalidRequestError, match=error):
        call(chat_backend)


def test_a_prompt_longer_than_the_context_window_is_refused(chat_backend):
    too_long = [{"role": "user", "content": "word " * 9000}]
    if type(chat_backend).__name__ == "LlamaServerModel":
        # llama-cpp-python's server answers 200 and closes the stream without a word:
        # the backend says so rather than returning an empty answer
        with pytest.raises(AdamError, match="ended the stream before the answer finished"):
            chat_backend.chat(too_long, max_tokens=5)
        return
    with pytest.raises(InvalidRequestError, match="context window"):
        chat_backend.chat(too_long, max_tokens=5)


def test_unload_frees_the_model_and_the_next_call_loads_it_again(backend_model,
                                                                 chat_gguf_path):
    model = type(backend_model)(str(chat_gguf_path))
    model.load()
    model.unload()
    assert not model.is_loaded
    reloaded = model.chat(QUESTION, max_tokens=2, **GREEDY).usage
    assert reloaded.completion_tokens == 2 and reloaded.load_seconds > 0
    assert model.chat(QUESTION, max_tokens=2, **GREEDY).usage.load_seconds == 0
    model.unload()


def test_a_truncated_gguf_is_refused_before_the_engine_reads_it(backend_model, tmp_path,
                                                                chat_gguf_path):
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(chat_gguf_path.read_bytes()[:4096])
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        type(backend_model)(str(truncated)).load()


def test_a_gguf_architecture_the_engine_cannot_run_is_named(backend_model, tmp_path):
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
    with pytest.raises(ModelLoadError, match=r"architecture 'someoddarch'.*cannot (load|run)"):
        type(backend_model)(str(path)).load()
