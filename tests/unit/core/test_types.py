"""Core types validate their input with this package's errors."""

from __future__ import annotations

import dataclasses

import pytest

from adam_integrations import (
    AdamError,
    ChatMessage,
    Chunk,
    GenerationConfig,
    InvalidInputTypeError,
    InvalidRequestError,
    Usage,
)
from adam_integrations.core.types import check_prompt, check_texts, coerce_messages, collect


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_tokens": 0}, "max_tokens must be >= 1"),
        ({"max_tokens": -5}, "max_tokens must be >= 1"),
        ({"temperature": -0.1}, "temperature must be >= 0.0"),
        ({"top_p": 1.5}, "top_p must be >= 0.0 and <= 1.0"),
        ({"repetition_penalty": 0.0}, "repetition_penalty must be > 0.0"),
        ({"temperature": float("nan")}, "finite number, got nan"),
            ({"temperature": 10**400}, "finite number"),
    ],
)
def test_generation_config_rejects_values_that_cannot_work(options, message):
    with pytest.raises(InvalidRequestError, match=message):
        GenerationConfig(**options)


def test_generation_config_rejects_wrong_types_as_type_errors():
    with pytest.raises(InvalidInputTypeError, match="max_tokens must be an integer"):
        GenerationConfig(max_tokens="10")
    with pytest.raises(TypeError):
        GenerationConfig(temperature=True)


def test_generation_errors_are_value_errors_and_adam_errors():
    with pytest.raises(ValueError):
        GenerationConfig(max_tokens=0)
    with pytest.raises(AdamError):
        GenerationConfig(max_tokens=0)


def test_a_single_stop_string_becomes_a_list_and_empty_ones_are_dropped():
    assert GenerationConfig(stop="END").stop == ["END"]
    assert GenerationConfig(stop=["", "x"]).stop == ["x"]


def test_merged_replaces_given_fields_and_keeps_the_rest():
    base = GenerationConfig(max_tokens=10, temperature=0.5)
    merged = base.merged(temperature=0.0, top_k=None)
    assert (merged.max_tokens, merged.temperature, merged.top_k) == (10, 0.0, None)
    with pytest.raises(InvalidRequestError, match="unknown generation option"):
        base.merged(max_new_tokens=3)


def test_a_config_is_frozen_and_merging_nothing_new_returns_it():
    config = GenerationConfig(temperature=0.2, stop="END")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.temperature = 0.9  # type: ignore[misc]
    assert config.merged() is config
    assert config.merged(temperature=0.2, stop=["END"], top_k=None) is config
    assert config.merged(temperature=0.3) is not config
    with pytest.raises(InvalidInputTypeError):  # True is not 1: a changed type is checked
        GenerationConfig(top_k=1).merged(top_k=True)


def test_merging_checks_only_what_changed_and_the_rules_between_fields(monkeypatch):
    from adam_integrations.core import types

    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    config = GenerationConfig(tools=[tool], tool_choice="f", top_logprobs=2)
    calls = []
    monkeypatch.setattr(types, "coerce_tools", lambda t: calls.append(t) or list(t))
    merged = config.merged(temperature=0.5, max_tokens=9)
    assert calls == []  # the tools were not read again
    assert (merged.tools, merged.tool_choice, merged.logprobs) == (config.tools, "f", True)
    assert merged.forced_call and not config.merged(tool_choice="auto").forced_call
    with pytest.raises(InvalidRequestError, match="contradict"):
        GenerationConfig(reasoning_effort="low").merged(think=False)
    with pytest.raises(InvalidRequestError, match="both constrain"):
        config.merged(response_format="json")
    with pytest.raises(InvalidRequestError, match="top_logprobs needs logprobs"):
        config.merged(logprobs=False)
    assert GenerationConfig().merged(think="high").reasoning_effort == "high"


def test_messages_accept_dicts_and_reject_unknown_roles_and_keys():
    assert ChatMessage.coerce({"role": "user", "content": "hi"}) == ChatMessage("user", "hi")
    with pytest.raises(InvalidRequestError, match="unknown message role"):
        ChatMessage("robot", "hi")
    with pytest.raises(InvalidRequestError, match="a message dict needs 'role'"):
        ChatMessage.coerce({"content": "hi"})
    with pytest.raises(InvalidInputTypeError, match="content must be a str"):
        ChatMessage("user", 42)


def test_an_empty_conversation_is_refused_with_a_hint():
    with pytest.raises(InvalidRequestError, match="at least one user message"):
        coerce_messages([])
    with pytest.raises(InvalidInputTypeError):
        coerce_messages("hello")


def test_prompts_must_be_non_empty_strings():
    with pytest.raises(InvalidRequestError, match="prompt is empty"):
        check_prompt("   ")
    with pytest.raises(InvalidInputTypeError):
        check_prompt(None)


def test_embedding_input_must_be_a_list_of_strings():
    assert check_texts([]) == []
    with pytest.raises(TypeError, match="wrap a single text"):
        check_texts("one text")
    with pytest.raises(TypeError, match="input 1 is a int"):
        check_texts(["ok", 3])


def test_collect_joins_text_and_keeps_the_final_reason_and_usage():
    usage = Usage(prompt_tokens=3, completion_tokens=2)
    chunks = [Chunk("Hel"), Chunk("lo"), Chunk("", finish_reason="length", usage=usage)]
    completion = collect(chunks, model="m")
    assert (completion.text, completion.finish_reason, completion.usage) == ("Hello", "length",
                                                                            usage)
    assert completion.usage.total_tokens == 5


@pytest.mark.parametrize(("choice", "read"), [
    ({"type": "function", "function": {"name": "get_weather"}}, "get_weather"),  # OpenAI chat
    ({"type": "function", "name": "get_weather"}, "get_weather"),  # OpenAI Responses
    ({"type": "tool", "name": "get_weather"}, "get_weather"),  # Anthropic
    ({"type": "any"}, "required"), ({"type": "auto"}, "auto"), ({"type": "none"}, "none"),
    ("any", "required"), (True, "required"), (None, "auto"), (False, "none"),
])
def test_every_dialects_tool_choice_is_read_by_one_reader(choice, read):
    from adam_integrations.core.tools import ToolSpec, coerce_tool_choice

    tools = [ToolSpec(name="get_weather", parameters={"type": "object"})]
    assert coerce_tool_choice(choice, tools) == read


@pytest.mark.parametrize("choice", [
    {"type": "function"}, {"type": "allowed_tools", "tools": []}, {"name": ""},
    {"type": "auto", "name": "get_weather"}, {"type": "function", "function": "get_weather"},
])
def test_a_tool_choice_object_that_names_nothing_is_refused_with_the_shapes(choice):
    from adam_integrations.core.tools import ToolSpec, coerce_tool_choice

    tools = [ToolSpec(name="get_weather", parameters={"type": "object"})]
    with pytest.raises(InvalidRequestError, match=r"names no mode or tool.*Anthropic") as error:
        coerce_tool_choice(choice, tools)
    assert error.value.param == "tool_choice"
