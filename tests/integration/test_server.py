"""``adam serve`` as a real subprocess on a free loopback port, driven by unmodified
third-party clients: the official ``ollama`` package, langchain-ollama, LlamaIndex's
Ollama classes and the ``openai`` client. Plus the bad input Ollama clients send."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import jsonschema
import pytest

from tests.helpers import error_message, wait_until

CHAT = "smollm2:135m"
EMBED = "all-minilm:l6-v2"
OPTIONS = {"temperature": 0, "num_predict": 12}


@pytest.fixture(scope="module")
def client(server):
    import ollama

    return ollama.Client(host=server)


# -- the official ollama client ------------------------------------------------------
def test_ollama_client_chat_answers_with_counts(client):
    response = client.chat(model=CHAT, messages=[{"role": "user", "content": "Say hi."}],
                           options=OPTIONS)
    assert response.message.role == "assistant" and response.message.content.strip()
    assert response.done and response.done_reason in ("stop", "length")
    assert response.prompt_eval_count > 0 and 0 < response.eval_count <= 12


def test_ollama_client_streams_pieces_and_counts_only_at_the_end(client):
    parts = list(client.chat(model=CHAT, messages=[{"role": "user", "content": "Count."}],
                             options=OPTIONS, stream=True))
    assert len(parts) > 3 and all(not p.done for p in parts[:-1]) and parts[-1].done
    assert all(p.eval_count is None for p in parts[:-1]) and parts[-1].eval_count > 0
    assert "".join(p.message.content for p in parts).strip()


def test_ollama_client_generate_and_system_prompt(client):
    response = client.generate(model=CHAT, prompt="The capital of France is",
                               system="Answer in one word.", options=OPTIONS)
    assert response.response.strip() and response.done


def test_ollama_client_embed_returns_normalised_vectors(client):
    response = client.embed(model=EMBED, input=["a cat", "a kitten", "stock prices"])
    vectors = response.embeddings
    assert len(vectors) == 3 and len(vectors[0]) == 384
    assert all(abs(sum(x * x for x in v) - 1) < 1e-3 for v in vectors)
    dot = [sum(a * b for a, b in zip(vectors[0], v, strict=True)) for v in vectors[1:]]
    assert dot[0] > dot[1]
    assert len(client.embeddings(model=EMBED, prompt="one").embedding) == 384


def test_ollama_client_show_list_and_ps(client):
    shown = client.show(CHAT)
    assert "completion" in shown.capabilities
    assert shown.modelinfo["llama.context_length"] == 8192
    names = [m.model for m in client.list().models]
    assert CHAT in names and EMBED in names
    assert any(m.model for m in client.ps().models)


def test_ollama_client_structured_output_and_tools(client):
    schema = {"type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]}},
              "required": ["city"]}
    response = client.chat(model=CHAT, format=schema, options={"temperature": 0},
                           messages=[{"role": "user", "content": "Capital of France?"}])
    jsonschema.validate(json.loads(response.message.content), schema)
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    answered = client.chat(model=CHAT, tools=[tool], options=OPTIONS,
                           messages=[{"role": "user", "content": "Weather in Paris?"}])
    assert answered.done  # the 135M model answers or calls; either is a valid reply


def test_an_unknown_model_is_a_404_the_client_raises(client):
    import ollama

    with pytest.raises(ollama.ResponseError) as raised:
        client.chat(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 404 and "not found" in raised.value.error


# -- framework clients ---------------------------------------------------------------
def test_langchain_chat_ollama_invoke_stream_and_structured_output(server):
    from langchain_ollama import ChatOllama
    from pydantic import BaseModel

    llm = ChatOllama(model=CHAT, base_url=server, temperature=0, num_predict=16,
                     validate_model_on_init=True)
    message = llm.invoke("Say hello.")
    assert message.content and message.usage_metadata["output_tokens"] > 0
    chunks = list(llm.stream("Count to three."))
    assert len(chunks) > 2 and "".join(c.content for c in chunks).strip()

    class City(BaseModel):
        city: str

    structured = ChatOllama(model=CHAT, base_url=server, temperature=0, num_predict=64)
    result = structured.with_structured_output(City, method="json_schema").invoke(
        "Name the capital of France.")
    assert isinstance(result, City)


def test_langchain_ollama_embeddings(server):
    from langchain_ollama import OllamaEmbeddings

    embeddings = OllamaEmbeddings(model=EMBED, base_url=server)
    assert len(embeddings.embed_query("hello")) == 384
    assert len(embeddings.embed_documents(["a", "b"])) == 2


def test_llama_index_ollama_chat_complete_and_metadata(server):
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.ollama import Ollama

    llm = Ollama(model=CHAT, base_url=server, temperature=0.0, request_timeout=60,
                 additional_kwargs={"num_predict": 12})
    assert llm.metadata.context_window == 8192
    assert llm.chat([ChatMessage(role="user", content="Hi")]).message.content
    pieces = list(llm.stream_chat([ChatMessage(role="user", content="Count.")]))
    assert len(pieces) > 2
    assert llm.complete("The sky is").text


def test_llama_index_ollama_embedding(server):
    from llama_index.embeddings.ollama import OllamaEmbedding

    embedding = OllamaEmbedding(model_name=EMBED, base_url=server)
    assert len(embedding.get_text_embedding("hello")) == 384


def test_openai_client_chat_stream_embeddings_and_models(server):
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    answer = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "Say hi."}], max_tokens=12,
        temperature=0)
    assert answer.choices[0].message.content and answer.usage.completion_tokens > 0
    stream = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "Count."}], max_tokens=12,
        temperature=0, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert chunks[-1].usage.completion_tokens > 0
    vectors = client.embeddings.create(model=EMBED, input=["a", "b"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 384
    assert vectors.usage.prompt_tokens >= 2
    assert CHAT in [m.id for m in client.models.list().data]


# -- bad input, answered as Ollama answers it; the server keeps serving ---------------
@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{not json", 400, "invalid JSON"),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', 400, "model is required"),
    (b'{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}', 404,
     'model "nope" not found, try pulling it first'),
    (b'{"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], '
     b'"options": {"temperature": "hot"}}', 400, 'options.temperature must be a number'),
])
def test_bad_requests_get_ollamas_status_and_error_body(server, body, status, message):
    response = httpx.post(f"{server}/api/chat", content=body, timeout=60)
    assert response.status_code == status and message in error_message(response)


def test_null_option_values_are_accepted(server):
    body = {"model": CHAT, "stream": False, "messages": [{"role": "user", "content": "hi"}],
            "options": {"temperature": None, "num_predict": 4, "top_k": None, "stop": None}}
    response = httpx.post(f"{server}/api/chat", json=body, timeout=60)
    assert response.status_code == 200 and response.json()["done"]


def test_an_oversized_body_is_refused_with_413(server):
    response = httpx.post(f"{server}/api/embed", timeout=60,
                          json={"model": EMBED, "input": ["x" * 1024] * 1100})
    assert response.status_code == 413 and "too large" in error_message(response)


def test_a_client_that_leaves_mid_stream_stops_the_generation(server, client):
    body = {"model": CHAT, "messages": [{"role": "user", "content": "Tell a long story."}],
            "options": {"num_predict": 4000, "temperature": 0}}
    started = time.perf_counter()
    with httpx.stream("POST", f"{server}/api/chat", json=body, timeout=60) as response:
        for line in response.iter_lines():
            if line:
                break  # leave after the first token
    # 4000 tokens would take half a minute; the next request is answered at once
    answer = client.chat(model=CHAT, messages=[{"role": "user", "content": "hi"}],
                         options={"num_predict": 2})
    assert answer.done and time.perf_counter() - started < 15


def test_unknown_routes_and_wrong_methods(server):
    assert httpx.get(f"{server}/api/nothing").status_code == 404
    assert httpx.get(f"{server}/api/chat").status_code == 405
    assert httpx.get(server).text == "Ollama is running"


def test_copy_makes_an_alias_and_delete_removes_only_the_alias(server, client):
    client.copy(CHAT, "my-smol")
    assert "my-smol:latest" in [m.model for m in client.list().models]  # name:tag, as Ollama
    assert client.chat(model="my-smol:latest", messages=[{"role": "user", "content": "hi"}],
                       options={"num_predict": 2}).done
    client.delete("my-smol")
    assert "my-smol" not in [m.model for m in client.list().models]
    assert httpx.request("DELETE", f"{server}/api/delete", json={"model": CHAT}
                         ).status_code == 404  # embedded models are not deletable


def test_langchain_chat_ollama_reasoning_and_tools(server, thinking_gguf):
    from langchain_core.tools import tool
    from langchain_ollama import ChatOllama

    thinker = ChatOllama(model=str(thinking_gguf), base_url=server, reasoning=True,
                         temperature=0, num_predict=16)
    message = thinker.invoke("What is 2+2?")
    assert message.additional_kwargs["reasoning_content"].strip()
    assert "<think>" not in message.content

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    llm = ChatOllama(model=CHAT, base_url=server, temperature=0, num_predict=24)
    answer = llm.bind_tools([get_weather]).invoke("What is the weather in Paris?")
    assert answer.content or answer.tool_calls  # the server took the tools and answered


def test_keep_alive_zero_unloads_the_model_after_the_answer(server, client):
    client.chat(model=CHAT, messages=[{"role": "user", "content": "hi"}],
                options={"num_predict": 2}, keep_alive=0)
    assert wait_until(lambda: CHAT not in [m.model for m in client.ps().models], 10)
    client.chat(model=CHAT, messages=[{"role": "user", "content": "hi"}],
                options={"num_predict": 2})  # loads again
    assert CHAT in [m.model for m in client.ps().models]


def test_concurrent_streams_to_one_model_all_complete(server):
    import concurrent.futures

    import ollama

    def stream(i: int) -> tuple[str, bool]:
        parts = list(ollama.Client(host=server).chat(
            model=CHAT, stream=True, options={"num_predict": 16, "temperature": 0},
            messages=[{"role": "user", "content": f"Count from {i}."}]))
        return "".join(p.message.content for p in parts), parts[-1].done

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(stream, range(4)))
    assert all(text.strip() and done for text, done in results)


def test_pull_of_a_model_that_is_there_succeeds_and_offline_hub_pulls_fail_clearly(
        server, client):
    assert client.pull(CHAT).status == "success"
    import ollama

    with pytest.raises(ollama.ResponseError) as raised:
        client.pull("hf:acme/not-cached-model")
    assert raised.value.status_code == 404 and "looks offline" in raised.value.error


def test_ollama_model_lists_the_servers_models(server):
    from adam_integrations.backends.remote.ollama import OllamaModel

    assert CHAT in OllamaModel.list_models(server)


def test_the_default_address_is_ollamas_on_loopback(monkeypatch):
    from adam_integrations.server.app import host_and_port

    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert host_and_port(None, None) == ("127.0.0.1", 11434)
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:8080")
    assert host_and_port(None, None) == ("0.0.0.0", 8080)
    assert host_and_port("127.0.0.1", 9000) == ("127.0.0.1", 9000)


def test_errors_name_the_model_as_the_client_asked_for_it(server, client):
    """The backend knows the weight file's name (SmolLM2-135M-Instruct); the client asked
    for smollm2:135m, and the error says that (issue 39)."""
    long = [{"role": "user", "content": "hello " * 9000}]
    answer = httpx.post(f"{server}/api/chat", timeout=60, json={
        "model": CHAT, "messages": long, "stream": False})
    assert answer.status_code == 400
    message = error_message(answer)
    assert f"context window of {CHAT}" in message and "SmolLM2-135M" not in message
    client.copy(CHAT, "my-named-smol")
    try:
        renamed = httpx.post(f"{server}/v1/chat/completions", timeout=60, json={
            "model": "my-named-smol", "messages": long}).json()["error"]["message"]
        assert "context window of my-named-smol" in renamed
    finally:
        client.delete("my-named-smol")


def test_create_refuses_a_parameter_that_is_not_of_its_type(server, tmp_path):
    """``PARAMETER temperature hot`` was stored and then ignored (issue 39): the same field
    table as requests refuses it, over /api/create and on the command line."""
    answer = httpx.post(f"{server}/api/create", timeout=60, json={
        "model": "hot-smol", "from": CHAT, "parameters": {"temperature": "hot"}})
    assert answer.status_code == 400 and "temperature" in error_message(answer)
    (tmp_path / "Modelfile").write_text(f"FROM {CHAT}\nPARAMETER temperature hot\n")
    done = subprocess.run([sys.executable, "-m", "adam_integrations.cli", "create", "hot-smol",
                           "-f", str(tmp_path / "Modelfile")], capture_output=True, text=True,
                          timeout=120, env={**os.environ,
                                            "OLLAMA_MODELS": str(tmp_path / "ollama")})
    assert done.returncode == 1 and "temperature" in done.stderr
