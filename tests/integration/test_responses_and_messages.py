"""OpenAI's Responses API and Anthropic's Messages API on ``adam serve``, driven by the
official SDKs (``openai`` ``client.responses``, ``anthropic`` ``client.messages``): an
answer, a tool loop, a stream, structured output, token counting, errors in each API's
own shape."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

MODEL = "smollm2:135m"
WEATHER_PARAMETERS = {"type": "object", "properties": {"city": {"type": "string",
                                                                "maxLength": 12}},
                      "required": ["city"]}
GREEDY = {"temperature": 0}


@pytest.fixture(scope="module")
def responses(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused").responses


@pytest.fixture(scope="module")
def messages(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server, api_key="unused")


# -- OpenAI's Responses API ----------------------------------------------------------------
def test_a_response_answers_with_instructions_and_usage(responses):
    answer = responses.create(model=MODEL, instructions="Be brief.", input="Say hello.",
                              max_output_tokens=8, **GREEDY)
    assert answer.output_text and answer.output[0].type == "message"
    assert answer.status in ("completed", "incomplete")
    assert answer.usage.output_tokens <= 8 and answer.usage.input_tokens > 5


def test_a_tool_loop_runs_on_function_call_items(responses):
    tools = [{"type": "function", "name": "get_weather", "description": "Weather in a city",
              "parameters": WEATHER_PARAMETERS}]
    first = responses.create(model=MODEL, input="What is the weather in Oslo?", tools=tools,
                             tool_choice="required", max_output_tokens=48, **GREEDY)
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)
    second = responses.create(model=MODEL, tools=tools, max_output_tokens=24, **GREEDY, input=[
        {"role": "user", "content": "What is the weather in Oslo?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name,
         "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}])
    assert second.output_text


def test_a_streamed_response_is_the_events_of_the_same_answer(responses):
    events = list(responses.create(model=MODEL, input="Say hello.", max_output_tokens=8,
                                   stream=True, **GREEDY))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text and text == events[-1].response.output_text
    assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))


def test_structured_output_and_what_cannot_be_done_here(responses):
    schema = {"type": "object", "properties": {"color": {"type": "string", "maxLength": 10}},
              "required": ["color"], "additionalProperties": False}
    answer = responses.create(model=MODEL, input="Name a color.", max_output_tokens=40,
                              text={"format": {"type": "json_schema", "name": "color",
                                               "schema": schema, "strict": True}})
    assert set(json.loads(answer.output_text)) == {"color"}
    with pytest.raises(openai.BadRequestError, match="stateless"):
        responses.create(model=MODEL, input="Hi", previous_response_id="resp_123")
    with pytest.raises(openai.BadRequestError, match="vision"):
        responses.create(model=MODEL, input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": "https://example.com/cat.png"}]}])



def test_one_model_is_retrieved_by_its_id(server):
    models = openai.OpenAI(base_url=f"{server}/v1", api_key="unused").models
    assert models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        models.retrieve("no-such-model:latest")


# -- Anthropic's Messages API ----------------------------------------------------------------
def test_a_message_answers_with_content_blocks_and_usage(messages):
    message = messages.messages.create(model=MODEL, max_tokens=8, system="Be brief.",
                                       messages=[{"role": "user", "content": "Say hello."}],
                                       extra_body=GREEDY)
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    usage = message.usage  # input_tokens leaves out what the prompt cache held
    assert usage.output_tokens <= 8 and usage.input_tokens + usage.cache_read_input_tokens > 5


def test_a_tool_loop_runs_on_tool_use_and_tool_result_blocks(messages):
    tools = [{"name": "get_weather", "description": "Weather in a city",
              "input_schema": WEATHER_PARAMETERS}]
    question = {"role": "user", "content": "What is the weather in Oslo?"}
    first = messages.messages.create(model=MODEL, max_tokens=48, tools=tools,
                                     tool_choice={"type": "any"}, messages=[question],
                                     extra_body=GREEDY)
    (use,) = [block for block in first.content if block.type == "tool_use"]
    assert first.stop_reason == "tool_use" and use.name == "get_weather"
    assert isinstance(use.input["city"], str)
    second = messages.messages.create(model=MODEL, max_tokens=24, tools=tools, messages=[
        question, {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": "Sunny, 21 C"}]}], extra_body=GREEDY)
    assert second.content and second.content[0].type == "text"


def test_a_streamed_message_and_token_counting(messages):
    question = [{"role": "user", "content": "Say hello."}]
    with messages.messages.stream(model=MODEL, max_tokens=6, messages=question,
                                  extra_body=GREEDY) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text and final.usage.output_tokens <= 6
    counted = messages.messages.count_tokens(model=MODEL, messages=question)
    assert counted.input_tokens == final.usage.input_tokens + \
        final.usage.cache_read_input_tokens


def test_structured_output_and_errors_in_anthropics_shape(messages):
    schema = {"type": "object", "properties": {"color": {"type": "string", "maxLength": 10}},
              "required": ["color"]}
    answer = messages.messages.create(
        model=MODEL, max_tokens=40, messages=[{"role": "user", "content": "Name a color."}],
        output_config={"format": {"type": "json_schema", "schema": schema}})
    assert set(json.loads(answer.content[0].text)) == {"color"}
    with pytest.raises(anthropic.NotFoundError) as missing:
        messages.messages.create(model="no-such-model", max_tokens=4,
                                 messages=[{"role": "user", "content": "Hi"}])
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError, match="vision"):
        messages.messages.create(model=MODEL, max_tokens=4, messages=[{
            "role": "user", "content": [{"type": "image", "source": {
                "type": "url", "url": "https://example.com/cat.png"}}]}])
