"""LlamaCppModel: the embedded GGUF run in place by llama.cpp, through the shared core."""

from __future__ import annotations

import json

import jsonschema
import pytest

from adam_integrations import (
    ChatMessage,
    InvalidRequestError,
    ModelManager,
    ModelNotFoundError,
)
from adam_integrations.backends.local.in_process import Generation
from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.core.output import ResponseParser
from adam_integrations.core.types import GenerationConfig
from adam_integrations.decoding.chunks import ChunkAssembler
from adam_integrations.decoding.constrained import ConstrainedDecoder
from adam_integrations.decoding.grammar import Phase, Plan, request_plan

QUESTION = [{"role": "user", "content": "Name three colors of the rainbow."}]
GREEDY = {"temperature": 0.0}


@pytest.fixture(scope="module")
def gguf_manager() -> ModelManager:
    return ModelManager(model_type="llamacpp")


@pytest.fixture(scope="module")
def model(gguf_manager) -> LlamaCppModel:
    assert isinstance(gguf_manager.backend, LlamaCppModel)
    return gguf_manager.backend


def test_the_embedded_gguf_runs_in_place_on_llama_cpp(gguf_manager, chat_gguf_path):
    info = gguf_manager.info
    assert (info.backend, info.format, info.quantization) == ("llamacpp", "gguf", "Q4_1")
    assert info.path == str(chat_gguf_path.resolve()) and info.context_window == 8192


def test_a_model_that_is_not_gguf_is_refused_with_the_alternative(embedding_folder):
    with pytest.raises(ModelNotFoundError, match="model_type='huggingface'"):
        LlamaCppModel(str(embedding_folder))


def test_the_next_phase_grammar_takes_over_at_the_marker(model):
    """The mechanism behind lazy grammars: free text until a marker, then a grammar."""
    plan = Plan((Phase(None, until=" "), Phase({"type": "const_string", "value": "[FORCED]"})))
    loaded = model.engine()
    prompt = model.render_chat([ChatMessage.coerce(m) for m in QUESTION])
    tokens = loaded.llama.tokenize(prompt.encode(), add_bos=False, special=True)
    config = GenerationConfig(temperature=0.0, max_tokens=40)
    assembler = ChunkAssembler(config, ResponseParser(), prompt_tokens=len(tokens), max_new=40)
    generation = Generation(max_new=40, thinking="none", assembler=assembler)
    decoder = ConstrainedDecoder(plan, loaded.grammars, max_new=40, thinking_budget=None,
                                 piece=loaded.piece)
    chunks = list(model._token_stream(loaded, tokens, config, generation, decoder))
    text = "".join(c.text for c in chunks)
    free, _, forced = text.rpartition(" ")
    assert forced.endswith("[FORCED]") and free and "[FORCED]" not in free
    assert chunks[-1].finish_reason == "stop"


def test_free_text_runs_without_a_grammar_in_auto_tool_mode():
    tool = {"name": "f", "parameters": {"type": "object", "properties": {}}}
    plan = request_plan(GenerationConfig(tools=[tool]), "none")
    assert plan.phases[0] == Phase(None, "<tool_call>") and plan.loop_from == 0
    assert plan.phases[1].format is not None
    single = request_plan(GenerationConfig(tools=[tool], parallel_tool_calls=False), "none")
    assert single.loop_from is None


def test_a_model_that_ends_its_turn_inside_an_opened_think_block_still_answers(
        chat_gguf_path):
    from tests.integration.conftest import DATA

    model = LlamaCppModel(str(chat_gguf_path),
                          chat_template=(DATA / "open_think_template.jinja").read_text())
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}},
              "required": ["answer"]}
    try:
        completion = model.chat(
            [{"role": "user", "content": "What is 2+2? Think briefly, then answer in JSON."}],
            response_format=schema, temperature=0.0, max_tokens=300)
    finally:
        model.unload()
    assert completion.thinking.strip() and completion.finish_reason == "stop"
    jsonschema.validate(json.loads(completion.text), schema)


def test_a_grammar_xgrammar_cannot_build_is_an_error_and_prints_nothing(model, capfd):
    grammars = model.engine().grammars
    capfd.readouterr()
    with pytest.raises(InvalidRequestError, match="cannot be turned into a grammar"):
        grammars.compiled({"type": "regex", "pattern": "(("})
    assert capfd.readouterr() == ("", "")


def test_non_ascii_tool_arguments_come_back_unescaped(gguf_manager):
    tool = {"name": "book_trip", "parameters": {
        "type": "object", "properties": {"city": {"enum": ["東京", "北京", "Zürich"]}},
        "required": ["city"]}}
    completion = gguf_manager.chat([{"role": "user", "content": "Book a trip to Tokyo."}],
                                   tools=[tool], tool_choice="book_trip", temperature=0.0,
                                   max_tokens=40)
    (call,) = completion.tool_calls
    assert call.arguments["city"] in ("東京", "北京", "Zürich")


def test_a_gguf_embeds_with_mean_pooling_normalised(model):
    texts = ["The cat sat on the mat.", "A cat was sitting on a mat.", "Stock prices fell."]
    vectors = model.embed(texts)
    assert len(vectors) == 3 and len(vectors[0]) == model.info().embedding_dimension == 576
    assert all(abs(sum(x * x for x in v) - 1.0) < 1e-4 for v in vectors)
    cosine = [sum(a * b for a, b in zip(vectors[0], v, strict=True)) for v in vectors[1:]]
    assert cosine[0] > cosine[1]
    assert model.embed(texts[:1])[0] == pytest.approx(vectors[0], abs=1e-4)


def test_mean_pooling_is_the_mean_of_llama_cpps_token_embeddings(model, chat_gguf_path):
    import llama_cpp
    import numpy

    per_token = llama_cpp.Llama(model_path=str(chat_gguf_path), embedding=True, verbose=False,
                                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_NONE, n_ctx=256)
    try:
        tokens = numpy.array(per_token.embed("The cat sat on the mat."))
    finally:
        per_token.close()
    mean = tokens.mean(axis=0)
    expected = mean / numpy.linalg.norm(mean)
    assert numpy.dot(expected, model.embed(["The cat sat on the mat."])[0]) > 0.999


def test_a_gguf_embedding_model_is_chosen_for_embeddings_by_reference(chat_gguf_path):
    manager = ModelManager(embedding_model=str(chat_gguf_path))
    assert isinstance(manager.embedder, LlamaCppModel)
    assert len(manager.embed("hello")) == 576


def test_the_context_window_says_why_and_shrinks_to_fit_the_memory(model, monkeypatch):
    import adam_integrations.backends.local.llamacpp as llamacpp

    loaded = model.engine()
    assert loaded.context_reason.startswith("the model's full context of 8192 tokens; ")
    path = model._gguf_path()
    monkeypatch.delenv("OLLAMA_NUM_PARALLEL", raising=False)
    monkeypatch.setattr(llamacpp, "available_memory", lambda: 0.75 * 1024**3)
    # the default slots shrink first (each holds a whole window), then the window
    slots, context, reason = llamacpp._slots_and_window(loaded.header, path, None, None,
                                                        offloaded=False)
    assert slots < llamacpp.DEFAULT_PARALLEL and "fewer to fit the RAM" in reason
    assert context == 8192 or (slots == 1 and context % 256 == 0)
    slots, context, reason = llamacpp._slots_and_window(loaded.header, path, None, 8,
                                                        offloaded=False)
    assert slots == 8 and context < 8192 and context % 256 == 0
    assert "0.8 GiB of RAM available" in reason and "8 slots as asked" in reason
    assert llamacpp._slots_and_window(loaded.header, path, 2048, 2, offloaded=False) == (
        2, 2048, "n_ctx=2048 as asked; 2 slots as asked")
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "3")  # Ollama's variable, as users set it
    assert LlamaCppModel("smollm2")._parallel == 3
    assert LlamaCppModel("smollm2", parallel=2)._parallel == 2
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "many")
    with pytest.raises(InvalidRequestError, match="OLLAMA_NUM_PARALLEL='many'"):
        LlamaCppModel("smollm2")
    with pytest.raises(InvalidRequestError, match="parallel=0"):
        LlamaCppModel("smollm2", parallel=0)
    assert llamacpp._yarn(loaded.header, 8192) == {}
    assert llamacpp._yarn(loaded.header, 16384)["rope_freq_scale"] == 0.5


def test_the_thread_count_is_the_usable_cores_unless_given(chat_gguf_path):
    from adam_integrations.core.hardware import physical_cores, usable_cores

    assert 1 <= usable_cores() <= physical_cores()
    with pytest.raises(InvalidRequestError, match="n_threads must be"):
        LlamaCppModel(str(chat_gguf_path), n_threads=0)
    one = LlamaCppModel(str(chat_gguf_path), n_threads=1, parallel=1)
    try:
        assert one.chat([{"role": "user", "content": "Hi"}], max_tokens=3,
                        temperature=0).usage.completion_tokens >= 1
        assert one.engine().llama.context_params.n_threads == 1
    finally:
        one.unload()
