"""LlamaCppModel: the embedded GGUF run in place by llama.cpp, through the shared core."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest

from adam_integrations import (
    ChatMessage,
    InvalidRequestError,
    ModelLoadError,
    ModelManager,
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.backends.llamacpp import LlamaCppModel
from tests.helpers import cancel_after_first_item
from tests.test_structured_output import QUESTIONS, SCHEMAS

QUESTION = [{"role": "user", "content": "Name three colors of the rainbow."}]
GREEDY = {"temperature": 0.0}


@pytest.fixture(scope="module")
def gguf_manager() -> ModelManager:
    return ModelManager(model_type="llamacpp")


@pytest.fixture(scope="module")
def model(gguf_manager) -> LlamaCppModel:
    assert isinstance(gguf_manager.backend, LlamaCppModel)
    return gguf_manager.backend


@pytest.fixture(scope="module")
def reference(model):
    return model.chat(QUESTION, max_tokens=24, **GREEDY)


def test_the_embedded_gguf_runs_in_place_on_llama_cpp(gguf_manager, chat_gguf_path):
    info = gguf_manager.info
    assert (info.backend, info.format, info.quantization) == ("llamacpp", "gguf", "Q4_1")
    assert info.path == str(chat_gguf_path.resolve()) and info.context_window == 8192


def test_streaming_yields_pieces_then_usage(model):
    chunks = list(model.stream_chat(QUESTION, max_tokens=12, **GREEDY))
    assert sum(1 for c in chunks if c.text) >= 3
    assert chunks[-1].finish_reason is not None and chunks[-1].usage is not None


def test_usage_counts_are_exact(model):
    completion = model.chat(QUESTION, max_tokens=5, **GREEDY)
    prompt = model.render_chat([ChatMessage.coerce(m) for m in QUESTION])
    llama = model._ensure_loaded().llama
    assert completion.usage.prompt_tokens == len(llama.tokenize(prompt.encode(), add_bos=False,
                                                                special=True))
    assert completion.usage.completion_tokens == 5 and completion.finish_reason == "length"


def test_non_streaming_is_the_stream_collected(model, reference):
    streamed = "".join(c.text for c in model.stream_chat(QUESTION, max_tokens=24, **GREEDY))
    assert streamed == reference.text and streamed.strip()


def test_a_multi_token_stop_string_is_cut_cleanly(model, reference):
    text = reference.text
    stop = text[len(text) // 3: len(text) // 3 + 7]
    completion = model.chat(QUESTION, max_tokens=24, stop=[stop], **GREEDY)
    assert completion.text == text[: text.index(stop)] and completion.finish_reason == "stop"


def test_breaking_out_stops_generation_and_frees_the_model(model, reference):
    stream = model.stream_chat(QUESTION, max_tokens=300, **GREEDY)
    next(stream)
    stream.close()
    assert model.chat(QUESTION, max_tokens=24, **GREEDY).text == reference.text


async def test_async_streaming_matches_sync(model, reference):
    pieces = [c.text async for c in model.astream_chat(QUESTION, max_tokens=24, **GREEDY)]
    assert "".join(pieces) == reference.text


async def test_cancelling_an_async_stream_releases_the_model(model):
    await cancel_after_first_item(
        lambda: model.astream_chat(QUESTION, max_tokens=400, **GREEDY))
    done = await asyncio.wait_for(model.achat(QUESTION, max_tokens=2, **GREEDY), 30)
    assert done.usage.completion_tokens == 2


@pytest.mark.parametrize("name", ["flat object", "nested object", "enum", "array of objects",
                                  "numbers with bounds", "unbounded numbers", "nullable"])
def test_grammar_constrained_output_parses_and_validates(gguf_manager, name):
    schema = SCHEMAS[name]
    completion = gguf_manager.chat([{"role": "user", "content": QUESTIONS[name]}],
                                   response_format=schema, temperature=0.0, max_tokens=200)
    assert completion.finish_reason == "stop", completion.text
    jsonschema.validate(json.loads(completion.text), schema)


def test_a_forced_tool_call_is_valid(gguf_manager):
    tool = {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    completion = gguf_manager.chat([{"role": "user", "content": "Weather in Paris?"}],
                                   tools=[tool], tool_choice="required", temperature=0.0,
                                   max_tokens=60)
    (call,) = completion.tool_calls
    assert call.name == "get_weather" and isinstance(call.arguments["city"], str)


def test_a_truncated_gguf_is_refused_before_llama_cpp_reads_it(tmp_path, chat_gguf_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(chat_gguf_path.read_bytes()[:4096])
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        LlamaCppModel(str(cut)).load()


def test_a_model_that_is_not_gguf_is_refused_with_the_alternative(embedding_folder):
    with pytest.raises(ModelNotFoundError, match="model_type='huggingface'"):
        LlamaCppModel(str(embedding_folder))


def test_bad_requests_and_embeddings_fail_clearly(model):
    with pytest.raises(InvalidRequestError, match="context window"):
        model.chat([{"role": "user", "content": "word " * 9000}], max_tokens=2)
    with pytest.raises(UnsupportedOperationError, match="huggingface"):
        model.embed(["text"])


def test_non_ascii_tool_arguments_come_back_unescaped(gguf_manager):
    tool = {"name": "book_trip", "parameters": {
        "type": "object", "properties": {"city": {"enum": ["東京", "北京", "Zürich"]}},
        "required": ["city"]}}
    completion = gguf_manager.chat([{"role": "user", "content": "Book a trip to Tokyo."}],
                                   tools=[tool], tool_choice="book_trip", temperature=0.0,
                                   max_tokens=40)
    (call,) = completion.tool_calls
    assert call.arguments["city"] in ("東京", "北京", "Zürich")
