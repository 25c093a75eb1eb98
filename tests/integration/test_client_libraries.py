"""Third-party client libraries against ``adam serve``, through their own helpers: the
``openai`` SDK's ``pydantic_function_tool``, instructor, the OpenAI Agents SDK and
``llm`` with ``llm-ollama``. Each builds its requests its own way (a pydantic model with
a nested model gives tool parameters with ``$defs`` and ``$ref``s), and each must get
what it expects back (issue 39)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import anthropic
import ollama
import openai
import pytest
from pydantic import BaseModel, Field

from tests.integration.conftest import ServeProcess

MODEL = "smollm2:135m"
EMBEDDER = "all-minilm:l6-v2"
GREEDY = {"temperature": 0}


class Place(BaseModel):
    city: str = Field(max_length=12)


class Trip(BaseModel):
    """A trip to plan."""

    to: Place
    stops: list[Place] = Field(max_length=2)


TRIP_SCHEMA = Trip.model_json_schema()
assert "$defs" in TRIP_SCHEMA  # what every pydantic model with a nested model gives


# -- $defs and $ref in tool parameters, on every route ------------------------------------
def test_the_openai_sdks_pydantic_function_tool_is_called_with_nested_models(server):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Plan a trip to Oslo."}],
        tools=[openai.pydantic_function_tool(Trip)], tool_choice="required", max_tokens=96,
        **GREEDY)
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.name == "Trip"
    Trip.model_validate_json(call.function.arguments)


def test_a_tool_with_defs_is_called_on_the_ollama_responses_and_messages_routes(server):
    tool = {"name": "plan_trip", "description": "Plan a trip", "parameters": TRIP_SCHEMA}
    asked = [{"role": "user", "content": "Plan a trip to Oslo."}]
    answer = ollama.Client(host=server).chat(
        model=MODEL, messages=asked, tools=[{"type": "function", "function": tool}],
        options={"num_predict": 96, **GREEDY})
    assert answer.done  # accepted: Ollama's API has no way to force the call
    response = openai.OpenAI(base_url=f"{server}/v1", api_key="unused").responses.create(
        model=MODEL, input=asked, tools=[{"type": "function", **tool}],
        tool_choice="required", max_output_tokens=96, **GREEDY)
    (call,) = [item for item in response.output if item.type == "function_call"]
    Trip.model_validate_json(call.arguments)
    message = anthropic.Anthropic(base_url=server, api_key="unused").messages.create(
        model=MODEL, max_tokens=96, messages=asked, tool_choice={"type": "any"},
        tools=[{"name": "plan_trip", "input_schema": TRIP_SCHEMA}])
    (use,) = [block for block in message.content if block.type == "tool_use"]
    Trip.model_validate(use.input)


def test_two_tools_defining_one_name_differently_keep_their_own_definitions(server):
    other = {"type": "object", "properties": {"at": {"$ref": "#/$defs/Place"}},
             "required": ["at"], "$defs": {"Place": {"type": "integer"}}}
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Plan a trip."}], tools=[
            openai.pydantic_function_tool(Trip),
            {"type": "function", "function": {"name": "seat", "parameters": other}}],
        tool_choice="required", max_tokens=96, **GREEDY)
    (call,) = completion.choices[0].message.tool_calls
    arguments = json.loads(call.function.arguments)
    if call.function.name == "seat":
        assert isinstance(arguments["at"], int)
    else:
        Trip.model_validate(arguments)


# -- instructor ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["TOOLS", "JSON_SCHEMA"])
def test_instructor_extracts_a_nested_model_in_each_mode(server, mode):
    """The modes that send the schema (Mode.JSON only describes it in the prompt, which
    a 135M model does not follow)."""
    import instructor

    client = instructor.from_openai(openai.OpenAI(base_url=f"{server}/v1", api_key="unused"),
                                    mode=getattr(instructor.Mode, mode))
    trip = client.chat.completions.create(
        model=MODEL, response_model=Trip, max_retries=0, max_tokens=96, **GREEDY,
        messages=[{"role": "user", "content": "Plan a trip to Oslo via Bergen."}])
    assert isinstance(trip, Trip) and isinstance(trip.to, Place)


# -- the OpenAI Agents SDK -----------------------------------------------------------------
@pytest.mark.parametrize("api", ["chat_completions", "responses"])
def test_the_agents_sdk_calls_a_function_tool_with_a_pydantic_argument(server, api):
    from agents import (
        Agent,
        ModelSettings,
        OpenAIChatCompletionsModel,
        OpenAIResponsesModel,
        Runner,
        function_tool,
        set_tracing_disabled,
    )

    set_tracing_disabled(True)  # no upload of traces to OpenAI
    planned: list[Trip] = []

    @function_tool
    def plan_trip(trip: Trip) -> str:
        """Plan a trip."""
        planned.append(trip)
        return f"planned a trip to {trip.to.city}"

    client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="unused")
    model = (OpenAIChatCompletionsModel if api == "chat_completions" else
             OpenAIResponsesModel)(model=MODEL, openai_client=client)
    agent = Agent(name="planner", instructions="Plan trips with the tool.", model=model,
                  tools=[plan_trip], tool_use_behavior="stop_on_first_tool",
                  model_settings=ModelSettings(tool_choice="required", max_tokens=96,
                                               temperature=0))
    result = Runner.run_sync(agent, "Plan a trip to Oslo.", max_turns=2)
    assert len(planned) == 1 and result.final_output == f"planned a trip to {planned[0].to.city}"


# -- llm with llm-ollama -------------------------------------------------------------------
def _llm(server: str, tmp_path, code: str) -> str:
    """``code`` run with ``llm`` in a fresh process (llm-ollama lists the server's models
    when the plugin loads), its own user folder, pointed at ``server``."""
    env = {**os.environ, "OLLAMA_HOST": server, "LLM_USER_PATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def folder_server(qwen3, tmp_path_factory) -> Iterator[str]:
    """``adam serve`` with a transformers-folder chat model beside the embedded
    transformers-folder embedder: two models whose digests were both ``""``."""
    running = ServeProcess(tmp_path_factory.mktemp("folder-server") / "server.log",
                           "--model", f"qwen3-folder={qwen3.dense_folder}")
    yield running.url
    running.stop()


def test_every_listed_model_has_its_own_stable_digest(folder_server):
    def digests() -> dict[str, str]:
        return {m.model: m.digest for m in ollama.Client(host=folder_server).list().models}

    listed = digests()
    assert all(len(d) == 64 for d in listed.values()), listed
    assert len(set(listed.values())) == len(listed)  # no two models taken for one
    assert digests() == listed  # stable


def test_llm_ollama_tells_the_chat_model_from_the_embedding_model(folder_server, tmp_path):
    """llm-ollama takes models with one digest for one model: with the empty digest the
    folder chat model became an alias of the embedding model (issue 39)."""
    chat = json.loads(_llm(folder_server, tmp_path, """
import json, llm
print(json.dumps({"chat": [m.model_id for m in llm.get_models()],
                  "embedders": [m.model_id for m in llm.get_embedding_models()]}))
"""))
    assert "ollama/qwen3-folder:latest" in chat["chat"]
    assert "ollama/qwen3-folder:latest" not in chat["embedders"]
    assert f"ollama/{EMBEDDER}" in chat["embedders"] and f"ollama/{EMBEDDER}" not in chat["chat"]


def test_llm_ollama_chats_embeds_and_counts_usage(server, tmp_path):
    out = json.loads(_llm(server, tmp_path, f"""
import json, llm
chat = llm.get_model("ollama/" + {MODEL!r})
answer = chat.prompt("Say hello.", temperature=0, num_predict=8)
vector = llm.get_embedding_model("ollama/" + {EMBEDDER!r}).embed("hello")
print(json.dumps({{"chat": chat.model_id, "text": answer.text(),
                   "usage": [answer.input_tokens, answer.output_tokens],
                   "dimensions": len(vector),
                   "embedders": [m.model_id for m in llm.get_embedding_models()]}}))
"""))
    assert out["chat"] == f"ollama/{MODEL}" and out["text"].strip()
    assert out["usage"][0] > 5 and 0 < out["usage"][1] <= 8
    assert out["dimensions"] == 384
    assert f"ollama/{EMBEDDER}" in out["embedders"]
    assert f"ollama/{MODEL}" not in out["embedders"]


def test_a_nested_pydantic_tool_is_forced_on_both_in_process_backends(backend_manager):
    """The same hoisted schema drives the grammar on llama.cpp and on transformers."""
    answer = backend_manager.chat([{"role": "user", "content": "Plan a trip to Oslo."}],
                                  tools=[openai.pydantic_function_tool(Trip)],
                                  tool_choice="required", max_tokens=96, temperature=0)
    (call,) = answer.tool_calls
    Trip.model_validate(call.arguments)
