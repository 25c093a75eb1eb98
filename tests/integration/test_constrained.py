"""Constrained decoding on both in-process backends: one xgrammar engine, every schema of
the corpus (tests/fixtures/schema_corpus.py) valid or clearly refused, bounds enforced,
answers near the token budget still whole, nothing printed, nothing but AdamErrors."""

from __future__ import annotations

import json
import warnings

import jsonschema
import pytest

from adam_integrations import InvalidRequestError, SchemaRelaxationWarning
from tests.fixtures.schema_corpus import CORPUS, problems, prompt

# The decoder is one (decoding/constrained.py); the backends differ only in how its mask
# reaches the logits. So every run puts each schema of the corpus through one engine:
# transformers (4x slower per token here) every refusal and relaxation and one in three
# of the rest, llama.cpp the others; make test-slow runs those on llama.cpp too, so both
# engines see the whole corpus there.
ON_TRANSFORMERS = [case for i, case in enumerate(CORPUS)
                   if case.expect != "valid" or i % 3 == 0]
ON_LLAMA_CPP = [pytest.param(case, id=case.name, marks=[pytest.mark.slow]
                             if case in ON_TRANSFORMERS else []) for case in CORPUS]


@pytest.mark.parametrize("case", ON_LLAMA_CPP)
def test_every_corpus_schema_gives_valid_json_or_a_clear_refusal_on_llama_cpp(
        manager, case, capfd):
    _valid_or_clearly_refused(manager.backend, case, capfd)


@pytest.mark.parametrize("case", ON_TRANSFORMERS, ids=[c.name for c in ON_TRANSFORMERS])
def test_corpus_schemas_give_valid_json_or_a_clear_refusal_on_transformers(
        hf_manager, case, capfd):
    _valid_or_clearly_refused(hf_manager.backend, case, capfd)


def _valid_or_clearly_refused(backend_model, case, capfd) -> None:
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if case.expect == "refused":
            with pytest.raises(InvalidRequestError, match="at #"):
                backend_model.chat(prompt(case), response_format=case.schema,
                                   temperature=0.0, max_tokens=case.max_tokens)
            return
        # small budgets keep the suite fast: many answers reach them and are closed
        completion = backend_model.chat(prompt(case), response_format=case.schema,
                                        temperature=0.0, max_tokens=case.max_tokens)
    assert problems(case, completion.text) == [], completion.text
    relaxed = [w for w in caught if issubclass(w.category, SchemaRelaxationWarning)]
    assert bool(relaxed) == (case.expect == "relaxed"), [str(w.message) for w in relaxed]
    assert capfd.readouterr().err == ""


AGE = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0,
                                                "maximum": 130}}, "required": ["age"]}


@pytest.mark.parametrize("question", [
    "The year is 2018. Write the year as the age.",
    "Give an age of -5.",
    "How old is the universe in years? Answer as age.",
])
def test_integer_bounds_are_always_kept(backend_model, question):
    completion = backend_model.chat([{"role": "user", "content": question}],
                                    response_format=AGE, temperature=0.0, max_tokens=24)
    assert 0 <= json.loads(completion.text)["age"] <= 130


STORY = {"type": "object", "properties": {"title": {"type": "string"},
                                          "story": {"type": "string"}},
         "required": ["title", "story"]}
WRITE = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]


@pytest.mark.parametrize("max_tokens", [12, 25, 40])
def test_an_answer_at_the_token_budget_is_closed_not_cut(backend_model, max_tokens):
    completion = backend_model.chat(WRITE, response_format=STORY, temperature=0.0,
                                    max_tokens=max_tokens)
    jsonschema.validate(json.loads(completion.text), STORY)
    assert completion.finish_reason == "length"  # the model would have gone on
    assert completion.usage.completion_tokens <= max_tokens


def test_json_mode_and_forced_tool_calls_are_closed_at_the_budget_too(backend_model):
    text = backend_model.chat(WRITE, response_format="json", temperature=0.0, max_tokens=10).text
    assert isinstance(json.loads(text), dict)
    tool = {"name": "write_story", "parameters": STORY}
    completion = backend_model.chat(WRITE, tools=[tool], tool_choice="write_story",
                                    temperature=0.0, max_tokens=30)
    (call,) = completion.tool_calls
    jsonschema.validate(call.arguments, STORY)


def test_a_schema_whose_smallest_answer_cannot_fit_is_refused_before_generating(
        backend_model):
    with pytest.raises(InvalidRequestError, match="raise max_tokens"):
        backend_model.chat(WRITE, response_format=STORY, temperature=0.0, max_tokens=4)


def test_a_relaxed_keyword_warns_and_names_where_it_is(backend_model):
    schema = {"type": "object", "properties": {"tags": {
        "type": "array", "items": {"type": "string"}, "uniqueItems": True}}}
    with pytest.warns(SchemaRelaxationWarning, match="uniqueItems at #/properties/tags"):
        backend_model.chat(WRITE, response_format=schema, temperature=0.0, max_tokens=20)


def test_an_opened_think_block_is_closed_before_a_constrained_answer(open_think_model):
    """The model tries to end its turn inside the think block: it cannot, and the thinking
    budget closes the block, so the answer still comes (on transformers too)."""
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}},
              "required": ["answer"]}
    completion = open_think_model.chat(
        [{"role": "user", "content": "What is 2+2? Think briefly, then answer in JSON."}],
        response_format=schema, temperature=0.0, max_tokens=120)
    assert completion.thinking.strip()
    jsonschema.validate(json.loads(completion.text), schema)
