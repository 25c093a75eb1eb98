"""Schema-constrained output on the real embedded 135M model: it always parses and validates."""

from __future__ import annotations

import json
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel

from adam_integrations import InvalidRequestError

ASK = "Answer with JSON only."

SCHEMAS = {
    "flat object": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    },
    "nested object": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["street", "zip"],
            },
        },
        "required": ["name", "address"],
    },
    "array of strings": {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"},
                                "minItems": 1, "maxItems": 4}},
        "required": ["tags"],
    },
    "enum": {
        "type": "object",
        "properties": {"status": {"enum": ["open", "closed", "pending"]}},
        "required": ["status"],
    },
    "optional fields": {
        "type": "object",
        "properties": {"title": {"type": "string"}, "subtitle": {"type": "string"},
                       "pages": {"type": "integer", "minimum": 1, "maximum": 2000}},
        "required": ["title"],
    },
    "numbers with bounds": {
        "type": "object",
        "properties": {"score": {"type": "number", "minimum": 0, "maximum": 10},
                       "age": {"type": "integer", "minimum": 0, "maximum": 120}},
        "required": ["score", "age"],
    },
    "boolean": {
        "type": "object",
        "properties": {"is_capital": {"type": "boolean"}},
        "required": ["is_capital"],
    },
    "array of objects": {
        "type": "object",
        "properties": {"items": {"type": "array", "maxItems": 3, "items": {
            "type": "object",
            "properties": {"product": {"type": "string"},
                           "quantity": {"type": "integer", "minimum": 1, "maximum": 99}},
            "required": ["product", "quantity"]}}},
        "required": ["items"],
    },
    "const": {
        "type": "object",
        "properties": {"kind": {"const": "answer"}, "text": {"type": "string", "maxLength": 80}},
        "required": ["kind", "text"],
    },
    "union": {
        "type": "object",
        "properties": {"value": {"anyOf": [{"type": "integer"}, {"type": "string"}]}},
        "required": ["value"],
    },
    "nullable": {
        "type": "object",
        "properties": {"nickname": {"type": ["string", "null"]}},
        "required": ["nickname"],
    },
    "unbounded numbers": {
        "type": "object",
        "properties": {"population": {"type": "integer"}, "area_km2": {"type": "number"}},
        "required": ["population", "area_km2"],
    },
    "string pattern": {
        "type": "object",
        "properties": {"date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}},
        "required": ["date"],
    },
}

QUESTIONS = {
    "flat object": "Describe Paris.",
    "nested object": "Invent a person and their address.",
    "array of strings": "Give tags for a blog post about Python.",
    "enum": "Is the ticket about the login bug still open?",
    "optional fields": "Describe a book.",
    "numbers with bounds": "Rate the movie Inception and give its director's age.",
    "boolean": "Is Paris the capital of France?",
    "array of objects": "List a small shopping order.",
    "const": "Say hello.",
    "union": "Give any value.",
    "nullable": "What is the nickname of New York?",
    "unbounded numbers": "Describe Japan with numbers.",
    "string pattern": "When did the first moon landing happen?",
}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_schema_constrained_output_parses_and_validates(backend_manager, name):
    schema = SCHEMAS[name]
    completion = backend_manager.chat([{"role": "user", "content": f"{QUESTIONS[name]} {ASK}"}],
                              response_format=schema, temperature=0.0, max_tokens=200)
    # a model that would write on past max_tokens has its answer closed ("length"): whole
    assert completion.finish_reason in ("stop", "length"), completion.text
    value = json.loads(completion.text)
    jsonschema.validate(value, schema)
    assert completion.parsed == value


class Movie(BaseModel):
    title: str
    year: int
    genre: Literal["drama", "comedy", "action", "science fiction"]
    sequel: str | None = None


def test_a_pydantic_model_as_response_format_comes_back_parsed(backend_manager):
    completion = backend_manager.chat([{"role": "user", "content": "Describe the movie Alien."}],
                              response_format=Movie, temperature=0.0, max_tokens=200)
    assert isinstance(completion.parsed, Movie)
    assert Movie.model_validate_json(completion.text) == completion.parsed


@pytest.mark.parametrize("question", ['Reply with a JSON object whose key "ok" is true.',
                                      'What is 2+2? Reply as JSON with the key "answer".'])
def test_json_mode_returns_a_json_object(backend_manager, question):
    completion = backend_manager.chat([{"role": "user", "content": question}],
                              response_format="json", temperature=0.0, max_tokens=200)
    assert completion.finish_reason == "stop"
    assert isinstance(json.loads(completion.text), dict)


def test_sampled_structured_output_still_validates(backend_manager):
    schema = SCHEMAS["nested object"]
    for seed in range(3):
        completion = backend_manager.chat([{"role": "user", "content": QUESTIONS["nested object"]}],
                                  response_format=schema, temperature=1.0, seed=seed,
                                  max_tokens=200)
        jsonschema.validate(json.loads(completion.text), schema)


def test_streamed_structured_output_is_the_same_json(backend_manager):
    messages = [{"role": "user", "content": "Describe Paris. " + ASK}]
    schema = SCHEMAS["flat object"]
    pieces = [c.text for c in backend_manager.stream_chat(messages, response_format=schema,
                                                  temperature=0.0, max_tokens=200)]
    assert len(pieces) > 2
    assert "".join(pieces) == backend_manager.chat(messages, response_format=schema,
                                                   temperature=0.0, max_tokens=200).text


def test_openai_style_response_formats_are_accepted(backend_manager):
    schema = SCHEMAS["boolean"]
    wrapped = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    completion = backend_manager.chat([{"role": "user", "content": QUESTIONS["boolean"]}],
                              response_format=wrapped, temperature=0.0, max_tokens=50)
    jsonschema.validate(json.loads(completion.text), schema)


def test_each_grammar_is_compiled_once(chat_model):
    schema = {"type": "object", "properties": {"once": {"type": "boolean"}},
              "required": ["once"]}
    cache = chat_model.engine().grammars
    before = cache.compilations
    for _ in range(3):
        chat_model.chat([{"role": "user", "content": "Yes?"}], response_format=schema,
                        temperature=0.0, max_tokens=20)
    assert cache.compilations == before + 1


@pytest.mark.parametrize(
    ("response_format", "error"),
    [
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "not a valid JSON schema"),
        ({"type": 5}, "not a valid JSON schema"),
        ("yaml", "is not known"),
    ],
)
def test_an_invalid_schema_is_refused_before_generation(backend_manager, response_format, error):
    with pytest.raises(InvalidRequestError, match=error):
        backend_manager.chat([{"role": "user", "content": "hi"}], response_format=response_format)
