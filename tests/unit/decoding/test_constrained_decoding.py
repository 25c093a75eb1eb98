"""Constrained decoding without a model: schema preparation, grammars and the closing, on a
byte vocabulary. Any schema gives a grammar or an AdamError, nothing else; the closing
completes what the grammar allows and the result validates."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest

from adam_integrations.core.errors import AdamError
from adam_integrations.core.types import GenerationConfig
from adam_integrations.decoding.constrained import ConstrainedDecoder
from adam_integrations.decoding.grammar import Grammars, request_plan

END = 256


@pytest.fixture(scope="module")
def grammars() -> Grammars:
    """Every byte is a token, plus an end token and a few merged JSON pieces."""
    def info():
        import xgrammar

        vocab = [bytes([b]) for b in range(256)] + [b"", b'{"', b'"}', b'":', b', "', b"true"]
        return xgrammar.TokenizerInfo(vocab, xgrammar.VocabType.RAW, vocab_size=len(vocab),
                                      stop_token_ids=[END])
    return Grammars(info, [END])


def _decoder(grammars, schema, max_new=400):
    plan = request_plan(GenerationConfig(response_format=schema), "none")
    return ConstrainedDecoder(plan, grammars, max_new=max_new, thinking_budget=None,
                              piece=lambda token: grammars.pieces[token].decode("latin-1"))


SCHEMAS = [
    {"type": "object", "properties": {"email": {"type": "string", "format": "email"},
                                      "when": {"type": "string", "format": "date-time"},
                                      "id": {"type": "string", "format": "uuid"}},
     "required": ["email", "when", "id"]},
    {"type": "string", "pattern": "^a*b$"},
    {"type": "string", "pattern": "^(ab)*c$"},
    {"type": "string", "pattern": "^x-"},
    {"type": "integer", "minimum": 18, "maximum": 130},
    {"type": "number", "exclusiveMinimum": 0.5, "exclusiveMaximum": 0.6},
    {"type": "array", "items": {"type": "integer"}, "minItems": 3},
    {"$defs": {"n": {"type": "object", "properties": {"kids": {"type": "array", "items": {
        "$ref": "#/$defs/n"}, "minItems": 1, "maxItems": 1}, "leaf": {"type": "boolean"}},
        "required": ["leaf"]}}, "$ref": "#/$defs/n"},
    {"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 2},
    {"type": "string", "format": "ipv4"},
    {"type": "string", "minLength": 5, "maxLength": 6},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
def test_the_closing_from_the_start_is_a_valid_answer(grammars, schema):
    import xgrammar

    decoder = _decoder(grammars, schema)
    plan = request_plan(GenerationConfig(response_format=schema), "none")
    closing = decoder.closing(xgrammar.GrammarMatcher(grammars.compiled(plan.answer)))
    assert closing is not None
    jsonschema.validate(json.loads(closing), schema,
                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_the_decoder_writes_the_closing_when_the_budget_runs_out(grammars):
    """Feed a model that only ever wants to write 'a' inside a string: the decoder lets it,
    then closes the answer within the budget."""
    import torch

    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"]}
    decoder = _decoder(grammars, schema, max_new=30)
    written = []
    while not decoder.done and len(written) < 30:
        logits = torch.zeros(len(grammars.pieces))
        logits[ord("a")] = 5.0  # the model's favourite
        logits[[ord("{"), ord('"'), ord("n"), ord("e"), ord(":")]] = 1.0
        decoder.mask(logits)
        token = int(torch.argmax(logits))
        decoder.accept(token)
        written.append(token)
    text = b"".join(grammars.pieces[t] for t in written).decode()
    jsonschema.validate(json.loads(text), schema)
    assert decoder.closed_early and "aaaa" in text and len(written) <= 30


def _random_schema(rng: random.Random, depth: int = 0):
    kinds = ["string", "integer", "number", "boolean", "null", "array", "object"]
    keywords = {
        "string": lambda: {"minLength": rng.randint(-1, 4), "maxLength": rng.randint(0, 6),
                           "pattern": rng.choice(["^[a-z]+$", "(?=x)", "[", "\\d{2}", "^x"]),
                           "format": rng.choice(["email", "date", "color", "uuid", 7])},
        "integer": lambda: {"minimum": rng.choice([0, 1.5, 10**20, "x"]),
                            "maximum": rng.choice([-3, 5, 2.5]),
                            "exclusiveMinimum": rng.choice([True, 0, 3]),
                            "multipleOf": rng.choice([0.5, 2, 0])},
        "number": lambda: {"minimum": rng.choice([0, -1e30]), "multipleOf": 0.1},
        "array": lambda: {"items": _random_schema(rng, depth + 1), "minItems": rng.randint(0, 3),
                          "maxItems": rng.randint(0, 2), "uniqueItems": True,
                          "contains": _random_schema(rng, depth + 1),
                          "prefixItems": [_random_schema(rng, depth + 1)]},
        "object": lambda: {"properties": {"a": _random_schema(rng, depth + 1)},
                           "required": rng.choice([["a"], ["b"], []]),
                           "additionalProperties": rng.choice([False, True, {"type": "integer"}]),
                           "patternProperties": {"^x-": {"type": "string"}},
                           "minProperties": rng.randint(0, 3), "maxProperties": rng.randint(0, 2)},
    }
    kind = rng.choice(kinds if depth < 2 else kinds[:5])
    schema = {"type": kind}
    extra = keywords.get(kind, dict)()
    for key in rng.sample(sorted(extra), k=rng.randint(0, len(extra))):
        schema[key] = extra[key]
    for key, value in rng.choice([{}, {"not": {}}, {"oneOf": [{"type": "integer"}, {}]},
                                  {"allOf": [{"type": kind}, {"type": "string"}]},
                                  {"$ref": "#/$defs/none"}, {"nullable": True}, {"if": {}},
                                  {"enum": []}, {"const": 3}]).items():
        schema[key] = value
    return schema


def test_random_schemas_give_a_grammar_or_an_adam_error_never_anything_else(grammars, capfd):
    rng = random.Random(15)
    outcomes = {"grammar": 0, "refused": 0}
    for _ in range(300):
        schema = _random_schema(rng)
        try:
            _decoder(grammars, schema, max_new=64)
            outcomes["grammar"] += 1
        except AdamError:
            outcomes["refused"] += 1
    assert outcomes["grammar"] > 30 and outcomes["refused"] > 30, outcomes
    assert capfd.readouterr().err == ""
