"""ChatAdam and AdamEmbeddings beyond the standard suites: RAG, agents, reasoning, sharing."""

from __future__ import annotations

import json
import shutil
from typing import TypedDict

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore

from adam_integrations import InvalidRequestError, ModelManager
from adam_integrations.langchain import AdamEmbeddings, ChatAdam
from adam_integrations.langchain.chat_models import to_core_message
from tests.helpers import cancel_after_first_item, idle_soon

GREEDY = {"model": "smollm2", "temperature": 0.0, "max_tokens": 64}


@pytest.fixture(scope="module")
def llm(manager) -> ChatAdam:
    return ChatAdam(**GREEDY)


def test_chat_adam_with_no_arguments_uses_the_machine_default(manager):
    default = ChatAdam()
    assert default.manager.backend is manager.backend
    assert ChatAdam(manager=manager).manager is manager


def test_kwargs_other_chat_models_take_are_accepted(llm):
    ChatAdam(model="smollm2", timeout=30, max_retries=2, api_key="unused", streaming=True)
    assert llm.invoke("Hi").content


def test_usage_is_on_the_invoke_result_and_only_on_the_last_stream_chunk(llm):
    message = llm.invoke("Say hi")
    usage = message.usage_metadata
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert usage["output_token_details"]["reasoning"] == 0
    chunks = list(llm.stream("Say hi"))
    assert all(c.usage_metadata is None for c in chunks[:-1])
    again = chunks[-1].usage_metadata
    # the same prompt again: all but its last token come from the slot's cache
    assert again["input_token_details"]["cache_read"] == again["input_tokens"] - 1
    assert {k: v for k, v in again.items() if k != "input_token_details"} == {
        k: v for k, v in usage.items() if k != "input_token_details"}


def test_response_metadata_names_model_backend_reason_and_timings(llm):
    metadata = llm.invoke("Say hi").response_metadata
    assert metadata["model_name"] == "smollm2" and metadata["backend"] == "llamacpp"
    assert metadata["finish_reason"] in ("stop", "length") and metadata["total_seconds"] > 0


def test_langsmith_params_describe_the_call():
    params = ChatAdam(model="smollm2", temperature=0.2, max_tokens=9, stop=["x"])._get_ls_params()
    assert params == {"ls_provider": "adam", "ls_model_name": "smollm2", "ls_model_type": "chat",
                      "ls_temperature": 0.2, "ls_max_tokens": 9, "ls_stop": ["x"]}


def test_reasoning_goes_to_reasoning_content_and_content_blocks_not_text(open_think_model):
    chat = ChatAdam(manager=ModelManager(model=open_think_model.source.location,
                                         chat_template=_open_think_template()),
                    temperature=0.0, max_tokens=12)
    message = chat.invoke("What is 2+2?")
    assert message.additional_kwargs["reasoning_content"].strip()
    assert "<think>" not in message.text and message.text == ""
    assert any(b["type"] == "reasoning" for b in message.content_blocks)
    assert message.usage_metadata["output_token_details"]["reasoning"] > 0


def _open_think_template() -> str:
    from pathlib import Path

    return (Path(__file__).parent / "data" / "open_think_template.jinja").read_text()


async def test_cancelling_an_async_stream_stops_generation(manager):
    chat = ChatAdam(model="smollm2", temperature=0.0, max_tokens=400)
    await cancel_after_first_item(lambda: chat.astream("Tell a very long story."))
    assert await idle_soon(chat.manager.backend)


def test_a_forced_call_at_the_token_budget_is_closed_or_refused_never_cut(manager):
    @tool
    def describe(text: str) -> str:
        """Describe something at length."""
        return text

    chat = ChatAdam(model="smollm2", temperature=0.0, max_tokens=30)
    message = chat.bind_tools([describe], tool_choice="any").invoke("Describe the sea.")
    (call,) = message.tool_calls  # closed by the decoder within the budget
    assert call["name"] == "describe" and isinstance(call["args"]["text"], str)
    assert message.invalid_tool_calls == []
    too_small = ChatAdam(model="smollm2", temperature=0.0, max_tokens=6)
    with pytest.raises(InvalidRequestError, match="raise max_tokens"):
        too_small.bind_tools([describe], tool_choice="any").invoke("Describe the sea.")


def test_tool_messages_with_list_content_and_error_status_reach_the_model():
    message = ToolMessage(content=[{"type": "text", "text": "boom"}], tool_call_id="c1",
                          status="error")
    core = to_core_message(message)
    assert (core.role, core.content, core.tool_call_id) == ("tool", "Error: boom", "c1")


def test_bind_tools_refuses_an_unknown_tool_name(llm):
    @tool
    def known(x: int) -> int:
        """Known."""
        return x

    with pytest.raises(ValueError, match="unknown tool 'unknown'"):
        llm.bind_tools([known], tool_choice="unknown")


class Person(TypedDict):
    name: str
    age: int


def test_structured_output_with_include_raw_and_every_method(llm):
    for method in ("json_schema", "function_calling", "json_mode"):
        result = llm.with_structured_output(Person, method=method, include_raw=True).invoke(
            "Invent a person.")
        assert isinstance(result["raw"], AIMessage) and result["parsing_error"] is None
        assert set(result["parsed"]) == {"name", "age"}


def test_an_lcel_rag_chain_answers_from_the_given_documents(llm):
    documents = [
        Document(page_content="The secret code word of the Adam project is PINEAPPLE."),
        Document(page_content="Paris is the capital of France."),
        Document(page_content="Python 3.12 added the type statement."),
    ]
    store = InMemoryVectorStore.from_documents(documents, embedding=AdamEmbeddings())
    retriever = store.as_retriever(search_kwargs={"k": 1})
    assert "PINEAPPLE" in retriever.invoke("What is the secret code word?")[0].page_content
    prompt = ChatPromptTemplate.from_messages([
        ("system", "Answer using only this context:\n{context}"),
        ("human", "{question}"),
    ])
    chain = (
        {"context": retriever | (lambda docs: "\n".join(d.page_content for d in docs)),
         "question": RunnablePassthrough()}
        | prompt | llm | StrOutputParser()
    )
    answer = chain.invoke("What is the secret code word of the Adam project?")
    assert "PINEAPPLE" in answer.upper()


def test_a_langgraph_agent_calls_a_tool_and_finishes(manager):
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    calls = []

    @tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        calls.append(city)
        return json.dumps({"city": city, "sky": "sunny", "celsius": 21})

    chat = ChatAdam(model="smollm2", temperature=0.0, max_tokens=96)

    def agent(state: MessagesState) -> dict:
        # The 135M model never calls tools on its own ("auto"): force the first step,
        # then let it answer from the tool's result.
        used_tool = any(isinstance(m, ToolMessage) for m in state["messages"])
        bound = chat.bind_tools([get_weather], tool_choice="none" if used_tool else "any")
        return {"messages": [bound.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    app = graph.compile()
    final = app.invoke({"messages": [HumanMessage("What is the weather in Paris?")]},
                       {"recursion_limit": 6})
    assert len(calls) == 1
    last = final["messages"][-1]
    assert isinstance(last, AIMessage) and not last.tool_calls and last.text.strip()


def test_embeddings_share_the_managers_loaded_model(manager):
    assert AdamEmbeddings().manager.embedder is manager.embedder


def test_embed_query_uses_the_models_query_prompt(tmp_path, embedding_folder):
    folder = tmp_path / "minilm-with-prompts"
    shutil.copytree(embedding_folder, folder)
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "document": ""}}))
    embeddings = AdamEmbeddings(model=str(folder))
    query = embeddings.embed_query("what is RAG?")
    assert query == pytest.approx(embeddings.embed_documents(["query: what is RAG?"])[0],
                                  abs=1e-6)
    assert query != pytest.approx(embeddings.embed_documents(["what is RAG?"])[0], abs=1e-3)


async def test_async_embeddings_equal_sync_ones():
    embeddings = AdamEmbeddings()
    assert await embeddings.aembed_documents(["a", "b"]) == embeddings.embed_documents(["a", "b"])
    assert await embeddings.aembed_query("q") == embeddings.embed_query("q")


def test_token_counts_use_the_models_own_tokenizer(llm):
    from langchain_core.messages import HumanMessage, trim_messages

    text = "Paris is the capital of France."
    assert llm.get_num_tokens(text) == llm.manager.backend.count_tokens(text) > 0
    history = [HumanMessage("one two three " * 20), HumanMessage(text)]
    trimmed = trim_messages(history, max_tokens=30, token_counter=llm, strategy="last")
    assert [m.content for m in trimmed] == [text]


def test_the_profile_comes_from_the_model_file_then_from_the_loaded_model(manager):
    chat = ChatAdam(model="smollm2", max_tokens=2)
    profile = chat.profile
    assert profile["max_input_tokens"] == 8192  # the GGUF header's, before any load
    assert profile["tool_calling"] and profile["tool_choice"] and profile["structured_output"]
    assert profile["reasoning_output"] is False and profile["image_inputs"] is False
    chat.invoke("Hi")
    assert chat.profile["max_input_tokens"] == chat.manager.info.context_window


def test_a_catalog_models_profile_needs_no_download_and_a_given_profile_is_kept():
    profile = ChatAdam(model="qwen3.5_9b").profile  # not on disk: the catalog's figures
    assert (profile["name"], profile["max_input_tokens"], profile["max_output_tokens"]) == (
        "Qwen/Qwen3.5-9B", 262_144, 65_536)
    assert profile["reasoning_output"] is True
    assert ChatAdam(model="qwen3.5_9b", profile={"max_input_tokens": 1}).profile == {
        "max_input_tokens": 1}


def test_a_thinking_templates_switch_shows_in_the_profile(qwen35):
    profile = ChatAdam(model=str(qwen35.gguf("qwen35"))).profile
    assert profile["reasoning_output"] is True and profile["max_input_tokens"] == 262_144
    assert "reasoning_effort_levels" not in profile  # on/off only
