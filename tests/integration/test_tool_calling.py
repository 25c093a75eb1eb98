"""Tool calling on the real embedded model: forced calls are valid, results round-trip."""

from __future__ import annotations

import json

import jsonschema
import pytest

from adam_integrations import ChatMessage, GenerationConfig, InvalidRequestError, ToolCall
from adam_integrations.core.output import ResponseParser
from adam_integrations.core.tools import ToolSpec
from adam_integrations.core.types import collect

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"},
                           "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
}
ADD = {
    "name": "add",
    "description": "Add two integers",
    "parameters": {"type": "object",
                   "properties": {"a": {"type": "integer", "minimum": -1000, "maximum": 1000},
                                  "b": {"type": "integer", "minimum": -1000, "maximum": 1000}},
                   "required": ["a", "b"]},
}
TOOLS = [WEATHER, ADD]
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]
GREEDY = {"temperature": 0.0, "max_tokens": 80}


def parameters(name: str) -> dict:
    return next(ToolSpec.coerce(t) for t in TOOLS if ToolSpec.coerce(t).name == name).parameters


def test_a_forced_tool_call_is_a_valid_call_of_an_offered_tool(backend_manager):
    completion = backend_manager.chat(ASK_WEATHER, tools=TOOLS, tool_choice="required", **GREEDY)
    assert completion.invalid_tool_calls == [] and len(completion.tool_calls) == 1
    call = completion.tool_calls[0]
    assert call.name in ("get_weather", "add") and call.id.startswith("call_")
    jsonschema.validate(call.arguments, parameters(call.name))
    assert completion.text == ""


def test_tool_choice_by_name_calls_that_tool(backend_manager):
    completion = backend_manager.chat([{"role": "user", "content": "What is 17 plus 25?"}],
                              tools=TOOLS, tool_choice="add", **GREEDY)
    (call,) = completion.tool_calls
    assert call.name == "add"
    jsonschema.validate(call.arguments, parameters("add"))


def test_tool_calls_arrive_in_their_own_stream_chunk(backend_manager):
    chunks = list(backend_manager.stream_chat(ASK_WEATHER, tools=TOOLS, tool_choice="get_weather",
                                      **GREEDY))
    calls = [c for chunk in chunks for c in chunk.tool_calls]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert "<tool_call>" not in "".join(c.text for c in chunks)


def get_weather(city: str, unit: str) -> dict:
    return {"city": city, "temperature": 21 if unit == "celsius" else 70, "sky": "sunny"}


def test_a_tool_result_round_trip_ends_in_a_final_answer(backend_manager, backend_model):
    first = backend_manager.chat(ASK_WEATHER, tools=[WEATHER], tool_choice="required", **GREEDY)
    (call,) = first.tool_calls
    result = json.dumps(get_weather(**call.arguments))
    history = [*ASK_WEATHER,
               ChatMessage("assistant", "", tool_calls=[call]),
               ChatMessage("tool", result, tool_call_id=call.id, name=call.name)]
    prompt = backend_model.render_chat([ChatMessage.coerce(m) for m in history],
                                    GenerationConfig(tools=[WEATHER]))
    assert result in prompt and '"name": "get_weather"' in prompt
    final = backend_manager.chat(history, tools=[WEATHER], tool_choice="none", **GREEDY)
    assert final.text.strip() and final.tool_calls == [] == final.invalid_tool_calls


def test_several_calls_in_one_turn_parse_with_their_own_ids():
    parser = ResponseParser(tool_names=["get_weather", "add"], parse_tool_calls=True)
    text = ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", '
            '"unit": "celsius"}}\n</tool_call>\n<tool_call>\n{"name": "add", "arguments": '
            '{"a": 1, "b": 2}}\n</tool_call>')
    completion = collect([*parser.push(text[:37]), *parser.push(text[37:]), *parser.finish()])
    assert [c.name for c in completion.tool_calls] == ["get_weather", "add"]
    assert completion.tool_calls[1].arguments == {"a": 1, "b": 2}
    assert len({c.id for c in completion.tool_calls}) == 2 and completion.text == ""


def test_parallel_forced_calls_are_all_valid(backend_manager):
    completion = backend_manager.chat(
        [{"role": "user", "content": "Weather in Paris and in Rome?"}],
                              tools=[WEATHER], tool_choice="required",
                              parallel_tool_calls=True, temperature=0.0, max_tokens=160)
    assert completion.invalid_tool_calls == [] and completion.tool_calls
    for call in completion.tool_calls:
        jsonschema.validate(call.arguments, parameters("get_weather"))


@pytest.mark.parametrize(
    ("block", "error"),
    [
        ('{"name": "get_weather", "arguments": {"city": "Par', "not valid JSON"),
        ('{"name": "launch_rocket", "arguments": {}}', "unknown tool 'launch_rocket'"),
        ('["not", "an", "object"]', "must be"),
    ],
)
def test_a_wrong_tool_call_in_auto_mode_becomes_an_invalid_call_next_to_the_text(block, error):
    parser = ResponseParser(tool_names=["get_weather"], parse_tool_calls=True)
    chunks = [*parser.push(f"Let me check.\n<tool_call>\n{block}\n</tool_call>"),
              *parser.finish()]
    completion = collect(chunks)
    assert completion.text == "Let me check.\n" and completion.tool_calls == []
    (invalid,) = completion.invalid_tool_calls
    assert error in invalid.error and invalid.arguments == block


def test_a_bare_json_call_is_read_when_the_call_was_forced():
    parser = ResponseParser(tool_names=["add"], parse_tool_calls=True, forced_tool_call=True)
    completion = collect([*parser.push('{"name": "add", "arguments": {"a": 1, "b": 2}}'),
                          *parser.finish()])
    assert completion.tool_calls[0].name == "add"


def test_auto_mode_on_a_real_model_answers_or_calls_without_crashing(backend_manager):
    completion = backend_manager.chat(ASK_WEATHER, tools=TOOLS, **GREEDY)
    for call in completion.tool_calls:
        jsonschema.validate(call.arguments, parameters(call.name))
    assert completion.text.strip() or completion.tool_calls


def test_tool_choice_none_offers_no_tools(backend_model):
    prompt = backend_model.render_chat([ChatMessage("user", "hi")],
                                    GenerationConfig(tools=TOOLS, tool_choice="none"))
    assert "get_weather" not in prompt


def test_templates_with_tool_support_render_tools_themselves(qwen3_style_model, chat_model):
    config = GenerationConfig(tools=TOOLS)
    hi = [ChatMessage("user", "hi")]
    native = qwen3_style_model.render_chat(hi, config)
    assert "# Tools" in native and '"name": "get_weather"' in native
    generic = chat_model.render_chat(hi, config)
    assert "# Tools" not in generic and "<tools>" in generic and "get_weather" in generic


def test_a_template_with_tool_support_renders_the_call_and_its_result(qwen3_style_model):
    call = ToolCall(name="add", arguments={"a": 1, "b": 2}, id="call_1")
    history = [ChatMessage("user", "1+2?"), ChatMessage("assistant", "", tool_calls=[call]),
               ChatMessage("tool", "3", tool_call_id="call_1")]
    prompt = qwen3_style_model.render_chat(history, GenerationConfig(tools=[ADD]))
    assert '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}' in prompt
    assert "<tool_response>\n3\n</tool_response>" in prompt


def test_a_forced_call_through_a_native_tool_template_is_valid(qwen3_style_model):
    completion = qwen3_style_model.chat(ASK_WEATHER, tools=TOOLS, tool_choice="get_weather",
                                        think=False, **GREEDY)
    (call,) = completion.tool_calls
    jsonschema.validate(call.arguments, parameters("get_weather"))


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"tools": [{"name": "f", "parameters": {"type": "string"}}]}, "type 'object'"),
        ({"tools": [{"name": "f", "parameters": {"type": "object", "properties": 3}}]},
         "not a valid JSON schema"),
        ({"tools": TOOLS, "tool_choice": "fly"}, "unknown tool 'fly'"),
        ({"tool_choice": "required"}, "needs tools"),
        ({"tools": [ADD, ADD]}, "unique"),
        ({"tools": [{"name": "bad name!"}]}, "not valid"),
        ({"tools": TOOLS, "tool_choice": "add", "response_format": "json"}, "one of them"),
    ],
)
def test_bad_tool_requests_fail_before_generation(backend_manager, options, error):
    with pytest.raises(InvalidRequestError, match=error):
        backend_manager.chat([{"role": "user", "content": "hi"}], **options)
