"""The Anthropic backend (``backends.remote.anthropic``) against a real server speaking the
Messages API: ``adam serve``'s own ``/v1/messages``, so the same tests run offline. Chat,
streaming, tools and their results, thinking blocks, structured output, usage, errors in
this package's hierarchy, and the framework classes on top (issue 39)."""

from __future__ import annotations

import asyncio

import pytest

from adam_integrations import (
    InvalidRequestError,
    ModelLoadError,
    ModelManager,
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.backends.remote.anthropic import AnthropicModel

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string",
                                                             "maxLength": 12}},
                   "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather in Oslo?"}]


@pytest.fixture(scope="module")
def model(server) -> AnthropicModel:
    return AnthropicModel(f"anthropic:smollm2:135m@{server}")


def test_a_chat_streams_text_with_usage_and_the_cached_part(model):
    ask = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    chunks = list(model.stream_chat(ask, max_tokens=8, temperature=0))
    assert "".join(c.text for c in chunks).strip()
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length") and last.usage.completion_tokens <= 8
    again = model.chat(ask, max_tokens=8, temperature=0)  # the same prompt: cached now
    assert again.usage.prompt_tokens == last.usage.prompt_tokens > 5
    assert again.usage.cached_tokens > 0


def test_a_forced_tool_call_and_its_result_round_trip(model):
    first = model.chat(ASK, tools=[WEATHER], tool_choice="required", max_tokens=48)
    (call,) = first.tool_calls
    assert call.name == "get_weather" and isinstance(call.arguments["city"], str)
    assert call.id.startswith("toolu_")
    follow_up = [*ASK, {"role": "assistant", "content": "", "tool_calls": [
        {"id": call.id, "type": "function",
         "function": {"name": call.name, "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "12 degrees and rain"}]
    answer = model.chat(follow_up, tools=[WEATHER], max_tokens=24, temperature=0)
    assert answer.text.strip() or answer.tool_calls


def test_thinking_arrives_apart_from_the_answer(server, thinking_gguf):
    thinker = AnthropicModel(f"anthropic:{thinking_gguf}@{server}")
    answer = thinker.chat([{"role": "user", "content": "What is 2+2?"}], think=True,
                          max_tokens=24, temperature=0)
    assert answer.thinking.strip() and "<think>" not in answer.text


def test_structured_output_parses(model):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"]}
    answer = model.chat([{"role": "user", "content": "A person as JSON."}],
                        response_format=schema, max_tokens=64, temperature=0)
    assert isinstance(answer.parsed["age"], int)


def test_errors_are_this_packages_and_say_what_to_do(server, model):
    with pytest.raises(ModelNotFoundError, match="does not serve 'no-such-model'"):
        AnthropicModel(f"anthropic:no-such-model@{server}").chat(ASK, max_tokens=2)
    with pytest.raises(InvalidRequestError, match="takes 0 to 1"):
        model.chat(ASK, temperature=1.5)
    with pytest.raises(ModelLoadError, match=r"no server answers at http://127\.0\.0\.1:9"):
        AnthropicModel("anthropic:m@http://127.0.0.1:9", max_retries=0).chat(ASK)
    with pytest.raises(ModelLoadError, match="ANTHROPIC_API_KEY"):
        AnthropicModel("anthropic:claude-haiku-4-5", base_url="https://api.anthropic.com")
    with pytest.raises(UnsupportedOperationError, match="no embeddings"):
        model.embed(["a"])
    with pytest.raises(UnsupportedOperationError, match="no raw completions"):
        list(model.stream_complete("Once"))


def test_the_manager_and_both_frameworks_run_on_it(server):
    from adam_integrations.langchain import ChatAdam
    from adam_integrations.llama_index import AdamLLM

    manager = ModelManager(model_type="anthropic", model="smollm2:135m", base_url=server,
                           api_key="unused")
    assert isinstance(manager.backend, AnthropicModel)
    assert "anthropic" in manager.explanation
    chat = ChatAdam(model=f"anthropic:smollm2:135m@{server}", temperature=0, max_tokens=48)
    message = chat.invoke("Hi")
    assert message.content and message.usage_metadata["output_tokens"] <= 48
    bound = chat.bind_tools([WEATHER], tool_choice="get_weather")
    assert bound.invoke("Weather in Oslo?").tool_calls[0]["name"] == "get_weather"
    llm = AdamLLM(model_type="anthropic", model="smollm2:135m", base_url=server,
                  max_tokens=8)
    assert llm.complete("Hi").text

    async def streamed() -> str:
        return "".join([c.text async for c in manager.astream_chat(ASK, max_tokens=8)])

    assert asyncio.run(streamed()).strip()
