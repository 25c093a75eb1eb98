"""The LangChain and LlamaIndex adapters' plumbing over the scripted backend: messages in
each framework's formats reach the core intact, and answers come back in its types."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from llama_index.core.base.llms.types import ChatMessage as LlamaChatMessage
from llama_index.core.base.llms.types import ThinkingBlock
from llama_index.core.tools import FunctionTool

from adam_integrations import AdamError, UnknownOptionError
from adam_integrations.core.loaded import loaded_models
from adam_integrations.langchain import ChatAdam
from adam_integrations.llama_index import AdamLLM
from tests.unit.scripted import NAME


def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


@pytest.fixture
def chat_adam(backend) -> ChatAdam:
    return ChatAdam(model=NAME, model_type=NAME)


@pytest.fixture
def adam_llm(backend) -> AdamLLM:
    return AdamLLM(model=NAME, model_type=NAME)


def test_chat_adam_invoke_is_its_stream_collected(chat_adam):
    message = chat_adam.invoke("say: one two")
    assert message.content == "one two"
    assert message.usage_metadata["output_tokens"] == 2
    assert "".join(c.content for c in chat_adam.stream("say: one two")) == "one two"


def test_chat_adam_keeps_reasoning_out_of_the_content(chat_adam):
    message = chat_adam.invoke("say: 42", reasoning=True)
    assert message.content == "42"
    assert message.additional_kwargs["reasoning_content"] == "I think."


def test_chat_adam_forced_tool_calls_come_back_as_tool_calls(chat_adam):
    message = chat_adam.bind_tools([get_weather], tool_choice="any").invoke(
        'say: {"city": "Paris"}')
    assert message.tool_calls[0]["name"] == "get_weather"
    assert message.tool_calls[0]["args"] == {"city": "Paris"}


def test_langchain_messages_reach_the_core_with_roles_and_tool_calls(chat_adam, backend):
    chat_adam.invoke([
        SystemMessage("Be brief."), HumanMessage("Weather?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"},
                                   "id": "call_1"}]),
        ToolMessage("sunny", tool_call_id="call_1"), HumanMessage("Thanks")])
    messages = backend.requests[-1].messages
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "user"]
    assert messages[2].tool_calls[0].arguments == {"city": "Oslo"}
    assert messages[3].tool_call_id == "call_1"


async def test_chat_adam_async_matches_sync(chat_adam):
    assert (await chat_adam.ainvoke("say: a b")).content == "a b"


def test_adam_llm_chat_and_complete_go_through_the_chat_template(adam_llm, backend):
    assert adam_llm.chat([LlamaChatMessage(role="user", content="say: hi")]).message.content \
        == "hi"
    assert adam_llm.complete("say: yes").text == "yes"
    assert backend.requests[-1].messages is not None


def test_adam_llm_thinking_is_a_block_never_content(adam_llm):
    response = adam_llm.chat([LlamaChatMessage(role="user", content="say: 7")], thinking=True)
    assert response.message.content == "7"
    assert any(isinstance(b, ThinkingBlock) for b in response.message.blocks)


def test_adam_llm_tool_calls_are_read_back(adam_llm):
    tool = FunctionTool.from_defaults(fn=get_weather)
    response = adam_llm.chat_with_tools([tool], user_msg='say: {"city": "Rome"}',
                                        tool_required=True)
    calls = adam_llm.get_tool_calls_from_response(response)
    assert (calls[0].tool_name, calls[0].tool_kwargs) == ("get_weather", {"city": "Rome"})


def test_adam_llm_formatted_prompts_keep_the_domain_and_keep_alive(backend):
    llm = AdamLLM(model=NAME, model_type=NAME, domain="code", keep_alive=0)
    stream = llm.stream_complete("say: a b c", formatted=True)
    next(stream)
    assert backend.requests[-1].prompt == "say: a b c"
    assert backend.requests[-1].config.temperature == 0.2  # the code domain's sampling
    assert loaded_models.expires_in(backend) == 0  # busy: counted as in use
    list(stream)
    loaded_models.set_keep_alive(backend, None)


def test_adapter_mistakes_raise_this_packages_errors(chat_adam):
    with pytest.raises(AdamError, match="unknown method"):
        chat_adam.with_structured_output({"type": "object"}, method="xml")
    with pytest.raises(AdamError, match="needs a schema"):
        chat_adam.with_structured_output(None)


def test_adam_llm_mistakes_raise_this_packages_errors(adam_llm):
    response = adam_llm.chat([LlamaChatMessage(role="user", content="say: no call")])
    with pytest.raises(AdamError, match="expected at least one tool call"):
        adam_llm.get_tool_calls_from_response(response)


def test_a_misspelt_option_in_a_call_is_refused_by_name_in_both_frameworks(chat_adam,
                                                                            adam_llm):
    with pytest.raises(UnknownOptionError, match=r"'temprature' \(did you mean 'temperature'"):
        chat_adam.invoke("say: hi", temprature=0.5)
    with pytest.raises(UnknownOptionError, match=r"'temprature' \(did you mean 'temperature'"):
        adam_llm.complete("say: hi", temprature=0.5)
    with pytest.raises(UnknownOptionError, match="runs one model"):
        adam_llm.complete("say: hi", model="another")
    # the frameworks' own keywords pass: the reasoning switches, LangSmith's structured
    # output marker, LlamaIndex's formatted
    assert chat_adam.invoke("say: hi", reasoning=False).content == "hi"
    assert adam_llm.complete("say: hi", formatted=True, thinking=False).text == "hi"


def test_both_frameworks_take_their_settings_from_one_place(backend):
    from adam_integrations.chat_defaults import ChatDefaults

    settings = {"temperature": 0.25, "max_tokens": 7, "seed": 3, "top_k": 5,
                "reasoning_effort": None, "keep_alive": "5m"}
    chat = ChatAdam(model=NAME, model_type=NAME, **settings)
    llm = AdamLLM(model=NAME, model_type=NAME, **settings)
    assert isinstance(chat, ChatDefaults) and isinstance(llm, ChatDefaults)
    chat.invoke("say: a")
    from_langchain = backend.requests[-1].config
    llm.complete("say: a")
    from_llama_index = backend.requests[-1].config
    assert from_langchain == from_llama_index
    assert (from_langchain.temperature, from_langchain.max_tokens, from_langchain.seed,
            from_langchain.top_k) == (0.25, 7, 3, 5)


@pytest.mark.parametrize(("cls", "misspelt", "meant"), [
    ("ChatAdam", "temprature", "temperature"), ("AdamLLM", "max_new_tokens", "max_tokens"),
    ("AdamEmbeddings", "modle", "model"), ("AdamEmbedding", "modle", "model"),
    ("AdamReranker", "top_k", "top_n"), ("AdamRerank", "topn", "top_n")])
def test_a_misspelt_constructor_field_fails_naming_the_field_it_meant(cls, misspelt, meant):
    """docs/errors.md: a typo fails, with "did you mean" (issue 39), on every framework
    class, as this package's own error (not pydantic's ValidationError)."""
    import adam_integrations.langchain as langchain
    import adam_integrations.llama_index as llama_index

    the_class = getattr(langchain, cls, None) or getattr(llama_index, cls)
    with pytest.raises(UnknownOptionError, match=rf"no field '{misspelt}' \(did you mean "
                                                 rf"'{meant}'"):
        the_class(**{misspelt: 1})


def test_server_options_without_a_model_name_the_actual_problem():
    """LangChain's standard tests build chat models with api_key, timeout and max_retries;
    with no model, the error says those options name a server (issue 39)."""
    from adam_integrations import InvalidRequestError

    with pytest.raises(InvalidRequestError, match=r"api_key=, timeout=, max_retries= name "
                                                  r"a model on a server \(openai at .*no "
                                                  "model was named"):
        ChatAdam(api_key="test", timeout=5, max_retries=2)
    with pytest.raises(InvalidRequestError, match="leave out api_key= to run a local model"):
        AdamLLM(api_key="test")
    remote = ChatAdam(model="gpt-4o-mini", api_key="test", timeout=5, max_retries=2)
    assert remote.manager.backend.base_url.endswith("/v1")  # the same rule, with a model
