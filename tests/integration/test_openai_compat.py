"""The OpenAI-compatible backend against real servers on loopback: llama-cpp-python's
``llama_cpp.server`` and ``adam serve``'s ``/v1``, both with the embedded models (the core
chat tests run on it too: ``test_chat.py``, ``chat_backend``)."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from adam_integrations import (
    AdamError,
    ModelLoadError,
    ModelManager,
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.backends.remote.openai_compat import LlamaServerModel, OpenAICompatibleModel
from adam_integrations.langchain import AdamEmbeddings, ChatAdam
from tests.helpers import cancel_after_first_item, idle_soon
from tests.integration.conftest import ServeProcess

WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
ASK = [{"role": "user", "content": "What is the weather in Oslo?"}]
PERSON = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}


@pytest.fixture(scope="module", params=["llamacpp-server", "adam-serve"])
def remote(request, llama_server, server):
    if request.param == "llamacpp-server":
        return LlamaServerModel(f"smollm2@{llama_server}")
    return OpenAICompatibleModel(f"smollm2:135m@{server}/v1")


@pytest.mark.parametrize("choice", ["required", "get_weather"])
def test_a_forced_tool_call_is_a_valid_call(remote, choice):
    answer = remote.chat(ASK, tools=WEATHER, tool_choice=choice, max_tokens=48,
                         temperature=0)
    assert [c.name for c in answer.tool_calls] == ["get_weather"], answer
    assert isinstance(answer.tool_calls[0].arguments.get("city"), str)
    assert answer.tool_calls[0].id


def test_a_tool_result_round_trip_ends_in_an_answer(remote):
    first = remote.chat(ASK, tools=WEATHER, tool_choice="get_weather", max_tokens=48,
                        temperature=0)
    call = first.tool_calls[0]
    follow_up = [*ASK, {"role": "assistant", "content": "", "tool_calls": [
        {"id": call.id, "type": "function",
         "function": {"name": call.name, "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "12 degrees and rain"}]
    answer = remote.chat(follow_up, tools=WEATHER, max_tokens=24, temperature=0)
    assert answer.text.strip() or answer.tool_calls


def test_tool_choice_none_offers_no_tools(remote):
    answer = remote.chat(ASK, tools=WEATHER, tool_choice="none", max_tokens=12)
    assert answer.tool_calls == [] and answer.text


@pytest.mark.parametrize("response_format", [PERSON, "json"])
def test_structured_output_parses(remote, response_format):
    answer = remote.chat([{"role": "user", "content": "Describe a person as JSON."}],
                         response_format=response_format, max_tokens=160, temperature=0)
    assert isinstance(answer.parsed, dict), answer.text
    if response_format is PERSON:
        assert isinstance(answer.parsed["name"], str) and isinstance(answer.parsed["age"], int)


async def test_cancelling_the_async_stream_closes_it_and_the_server_stops(remote):
    await cancel_after_first_item(lambda: remote.astream_chat(ASK, max_tokens=400))
    assert await idle_soon(remote)


def test_info_and_token_counts(remote, llama_server):
    info = remote.info()
    assert info.name == remote.model_id and info.details["base_url"] == remote.base_url
    if isinstance(remote, LlamaServerModel):
        assert remote.count_tokens("hello world, hello") == ModelManager(
            model_type="llamacpp").backend.count_tokens("hello world, hello")
    else:  # adam serve has no tokenizer route and the name is not a local model
        with pytest.raises(UnsupportedOperationError, match="no tokenizer endpoint"):
            remote.count_tokens("hello")


def test_embeddings_through_adam_serve_are_the_local_vectors(server):
    remote = OpenAICompatibleModel(f"all-minilm:l6-v2@{server}/v1")
    texts = [f"text number {i} about servers" for i in range(70)]  # two batches
    vectors = remote.embed(texts)
    local = ModelManager().batch_embed(texts[:3])
    assert len(vectors) == 70 and len(vectors[0]) == 384
    for a, b in zip(vectors[:3], local, strict=True):
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        assert dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b)) > 0.9999


def test_embeddings_from_a_chat_only_server_fail_clearly(llama_server):
    with pytest.raises(AdamError, match="embedding"):
        LlamaServerModel(f"smollm2@{llama_server}").embed(["a"])


def test_errors_say_what_to_do(server, llama_server, session_cache):
    with pytest.raises(ModelLoadError, match=r"no server answers at http://127\.0\.0\.1:9/v1"):
        LlamaServerModel("smollm2@http://127.0.0.1:9/v1").chat(ASK, max_tokens=2)
    with pytest.raises(ModelNotFoundError, match=r"serves: .*smollm2:135m"):
        OpenAICompatibleModel(f"no-such-model@{server}/v1").chat(ASK, max_tokens=2)
    keyed = ServeProcess(session_cache / "keyed-openai.log", "--api-key", "sk-right")
    try:
        with pytest.raises(ModelLoadError, match="refused the API key"):
            OpenAICompatibleModel(f"smollm2:135m@{keyed.url}/v1", api_key="sk-wrong",
                                  max_retries=0).chat(ASK, max_tokens=2)
        answer = OpenAICompatibleModel(f"smollm2:135m@{keyed.url}/v1",
                                       api_key="sk-right").chat(ASK, max_tokens=2)
        assert answer.usage.completion_tokens == 2
    finally:
        keyed.stop()


def test_the_framework_classes_run_on_it_unchanged(llama_server, server):
    chat = ChatAdam(model=f"llamacpp-server:smollm2@{llama_server}", max_tokens=8,
                    temperature=0)
    assert chat.invoke("Say hi.").content
    assert "".join(c.content for c in chat.stream("Say hi."))
    assert asyncio.run(chat.ainvoke("Say hi.")).content
    embeddings = AdamEmbeddings(model=f"openai:all-minilm:l6-v2@{server}/v1")
    assert len(embeddings.embed_query("hello")) == 384
    from adam_integrations.llama_index import AdamLLM

    llm = AdamLLM(model=f"openai:smollm2:135m@{server}/v1", max_tokens=8)
    assert llm.complete("The sky is").text


def test_reasoning_arrives_apart_from_the_answer(server, thinking_gguf):
    """adam serve sends the think block as ``reasoning_content``; the backend gives it
    back as thinking, exactly as the local backends split it."""
    remote = OpenAICompatibleModel(f"{thinking_gguf}@{server}/v1")
    local = ModelManager(model=str(thinking_gguf), model_type="llamacpp").backend
    question = [{"role": "user", "content": "Is the sea blue?"}]
    far, near = (m.chat(question, max_tokens=24, temperature=0) for m in (remote, local))
    assert far.thinking and far.thinking == near.thinking
    assert far.text == near.text and "<think>" not in far.text
    chunks = list(remote.stream_chat(question, max_tokens=24, temperature=0))
    assert "".join(c.thinking for c in chunks) == near.thinking


def test_adam_serve_serves_a_remote_model_under_a_local_name(llama_server, session_cache):
    import ollama

    front = ServeProcess(session_cache / "front-server.log",
                         "--model", f"remote-smol=llamacpp-server:smollm2@{llama_server}")
    try:
        client = ollama.Client(host=front.url)
        assert "remote-smol:latest" in [m.model for m in client.list().models]
        answer = client.chat(model="remote-smol", options={"num_predict": 6},
                             messages=[{"role": "user", "content": "Say hi."}])
        assert answer.message.content and answer.done
        with pytest.raises(ollama.ResponseError) as refused:  # requests cannot name URLs
            client.chat(model=f"llamacpp-server:smollm2@{llama_server}",
                        messages=[{"role": "user", "content": "Hi"}])
        assert refused.value.status_code == 400
    finally:
        front.stop()


def test_chatadam_keeps_the_reasoning_chatopenai_drops(server, thinking_gguf):
    """LangChain's ChatOpenAI drops ``reasoning_content`` from vLLM-style servers
    (langchain #34328, #35059); ChatAdam over this backend keeps it, apart from content."""
    chat = ChatAdam(model=f"openai:{thinking_gguf}@{server}/v1", max_tokens=24,
                    temperature=0)
    message = chat.invoke("Is the sea blue?")
    assert message.additional_kwargs["reasoning_content"]
    assert "<think>" not in message.content
    assert any(block["type"] == "reasoning" for block in message.content_blocks)


def test_tokens_are_counted_by_the_models_own_tokenizer_when_it_is_here(server, qwen3):
    """adam serve has no tokenizer route; a model the server runs from a folder on this
    machine is counted with that folder's tokenizer."""
    from transformers import AutoTokenizer

    remote = OpenAICompatibleModel(f"{qwen3.dense_folder}@{server}/v1")
    text = "Qwen3 counts <think> and words."
    expected = len(AutoTokenizer.from_pretrained(str(qwen3.dense_folder)).encode(
        text, add_special_tokens=False))
    assert remote.count_tokens(text) == expected


# -- base_url, api_key, timeout, max_retries: as ChatOpenAI and ChatOllama take them ------
def test_chat_classes_route_base_url_to_the_server_and_never_to_the_catalog(server):
    from adam_integrations.llama_index import AdamLLM

    for chat in (ChatAdam(model_type="openai", model="smollm2:135m", base_url=f"{server}/v1",
                          api_key="unused", timeout=60, max_retries=1),
                 ChatAdam(model="smollm2:135m", base_url=f"{server}/v1"),  # auto: a server
                 ChatAdam(model="ollama:smollm2:135m", base_url=server)):
        message = chat.invoke("Hi", max_tokens=3, temperature=0)
        assert message.content and message.response_metadata["backend"] in ("openai",
                                                                             "ollama")
    manager = ModelManager(model_type="vllm", model="smollm2:135m", base_url=f"{server}/v1")
    assert manager.source.kind == "remote" and manager.source.endpoint == f"{server}/v1"
    assert manager.generate_response("Hi", max_tokens=3, temperature=0)
    llm = AdamLLM(model_type="openai", model="smollm2:135m", base_url=f"{server}/v1",
                  max_tokens=3)
    assert llm.complete("Hi").text


def test_server_options_on_a_local_model_or_an_unreachable_server_are_refused(server):
    from adam_integrations.core.errors import UnknownOptionError

    with pytest.raises(UnknownOptionError, match="runs the model in this process"):
        ModelManager(model_type="llamacpp", model="smollm2", base_url=server)
    with pytest.raises(AdamError, match=r"is a server .*no model was named: pass model="):
        ModelManager(model_type="openai", base_url=f"{server}/v1")
    with pytest.raises(AdamError, match=r"127\.0\.0\.1:9/v1"):
        ModelManager(model_type="openai", model="m", base_url="http://127.0.0.1:9/v1",
                     max_retries=0).generate_response("Hi", max_tokens=2)


def test_a_server_named_only_openai_compatible_is_recognised_by_its_model_list(llama_server,
                                                                              caplog):
    """llama-cpp-python's server refuses OpenAI's ``json_schema`` with a 500; named as a
    plain OpenAI-compatible server, its ``/v1/models`` gives it away (issue 39)."""
    model = OpenAICompatibleModel(f"openai:smollm2@{llama_server}")
    with caplog.at_level("INFO", logger="adam_integrations.backends.remote.openai_compat"):
        answer = model.chat([{"role": "user", "content": "Describe a person as JSON."}],
                            response_format=PERSON, max_tokens=160, temperature=0)
    assert isinstance(answer.parsed["age"], int)
    assert model.info().details["engine"] == "llamacpp-server"
    assert "is llamacpp-server" in caplog.text


def test_a_refused_json_schema_goes_again_as_json_object_with_the_schema(llama_server,
                                                                         caplog):
    """A server not recognised that refuses ``json_schema`` gets the other dialect, once
    and from then on, and the log says so."""
    from adam_integrations.backends.remote.openai_compat import ENGINES

    model = OpenAICompatibleModel(f"openai:smollm2@{llama_server}", max_retries=0)
    model.load()
    model.engine = ENGINES["openai"]  # as a server whose /v1/models says nothing
    ask = [{"role": "user", "content": "Describe a person as JSON."}]
    with caplog.at_level("WARNING", logger="adam_integrations.backends.remote.openai_compat"):
        answer = model.chat(ask, response_format=PERSON, max_tokens=160, temperature=0)
    assert isinstance(answer.parsed["age"], int)
    assert "refused response_format json_schema" in caplog.text
    assert model.engine.schema_in_json_object
    streamed = asyncio.run(_collected(model.astream_chat(ask, response_format=PERSON,
                                                         max_tokens=160, temperature=0)))
    assert isinstance(json.loads(streamed)["age"], int)


async def _collected(chunks) -> str:
    return "".join([chunk.text async for chunk in chunks])
