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
from adam_integrations.backends.gbnf import Phase, Plan, request_plan
from adam_integrations.backends.llamacpp import LlamaCppModel
from adam_integrations.core.decoding import ChunkAssembler
from adam_integrations.core.output import ResponseParser
from adam_integrations.core.types import GenerationConfig

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
    plan = Plan((Phase(None, until=" "), Phase('root ::= "[FORCED]"')))
    loaded = model._ensure_loaded()
    prompt = model.render_chat([ChatMessage.coerce(m) for m in QUESTION])
    tokens = loaded.llama.tokenize(prompt.encode(), add_bos=False, special=True)
    config = GenerationConfig(temperature=0.0, max_tokens=40)
    assembler = ChunkAssembler(config, ResponseParser(), prompt_tokens=len(tokens), max_new=40)
    chunks = list(model._token_stream(loaded, tokens, config, plan, assembler, 40))
    text = "".join(c.text for c in chunks)
    free, _, forced = text.rpartition(" ")
    assert forced.endswith("[FORCED]") and free and "[FORCED]" not in free
    assert chunks[-1].finish_reason == "stop"


def test_free_text_runs_without_a_grammar_in_auto_tool_mode():
    tool = {"name": "f", "parameters": {"type": "object", "properties": {}}}
    plan = request_plan(GenerationConfig(tools=[tool]), "none")
    assert plan.phases[0] == Phase(None, "<tool_call>") and plan.loop_from == 0
    assert "adam-call" in plan.phases[1].grammar
    single = request_plan(GenerationConfig(tools=[tool], parallel_tool_calls=False), "none")
    assert single.loop_from is None


def test_a_model_that_ends_its_turn_inside_an_opened_think_block_still_answers(
        chat_gguf_path):
    from tests.conftest import DATA

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


def test_a_grammar_llama_cpp_cannot_parse_is_an_error_not_a_crash(model):
    with pytest.raises(InvalidRequestError, match="could not parse the grammar"):
        model._grammar("root ::= undefined-rule\n")


def test_non_ascii_tool_arguments_come_back_unescaped(gguf_manager):
    tool = {"name": "book_trip", "parameters": {
        "type": "object", "properties": {"city": {"enum": ["東京", "北京", "Zürich"]}},
        "required": ["city"]}}
    completion = gguf_manager.chat([{"role": "user", "content": "Book a trip to Tokyo."}],
                                   tools=[tool], tool_choice="book_trip", temperature=0.0,
                                   max_tokens=40)
    (call,) = completion.tool_calls
    assert call.arguments["city"] in ("東京", "北京", "Zürich")
