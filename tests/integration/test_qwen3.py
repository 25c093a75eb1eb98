"""Qwen3 through every backend, on fixtures built from real Qwen3 parts (the vocabulary,
the official chat template, the added special tokens) with random weights.

The prompt each backend renders is compared with the official template rendered by plain
jinja2 the way Hugging Face renders chat templates (the reference), on the conversations
that exercise the template's rules. With random weights free text is noise: these tests
assert structure, never wording.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from adam_integrations import ChatMessage, GenerationConfig, ModelBackend
from adam_integrations.backends.local.huggingface import HuggingFaceModel
from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.core.types import coerce_messages

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 12}}, "required": ["city"]}}}


def reference(template: str, messages: list[dict[str, Any]], **variables: Any) -> str:
    """The official template rendered as Hugging Face's ``apply_chat_template`` does."""
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                extensions=["jinja2.ext.loopcontrols"])
    environment.filters["tojson"] = lambda value, indent=None: json.dumps(
        value, ensure_ascii=False, indent=indent)
    return environment.from_string(template).render(messages=messages,
                                                    add_generation_prompt=True, **variables)


@dataclass
class Case:
    """A conversation (as OpenAI-style dicts, which the official template reads too) and
    the request's settings."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    think: bool | None = None

    def variables(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.tools:
            out["tools"] = self.tools
        if self.think is not None:
            out["enable_thinking"] = self.think
        return out

    def config(self) -> GenerationConfig:
        return GenerationConfig(tools=self.tools or None, think=self.think)


TOOL_LOOP = [
    {"role": "user", "content": "What is the weather in Oslo?"},
    {"role": "assistant", "content": "", "reasoning_content": "I should look it up.",
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": -3}"},
]

CASES = {
    "plain chat": Case([{"role": "user", "content": "What is 2 + 2?"}]),
    "a system prompt": Case([{"role": "system", "content": "Answer in French."},
                             {"role": "user", "content": "Hello"}]),
    "tools offered": Case([{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": "Weather in Oslo?"}], tools=[WEATHER]),
    "tool calls and tool results": Case(TOOL_LOOP, tools=[WEATHER]),
    "two tool results in a row": Case([
        *TOOL_LOOP[:2], TOOL_LOOP[2],
        {"role": "tool", "tool_call_id": "call_2", "content": "windy"}], tools=[WEATHER]),
    "think=True": Case([{"role": "user", "content": "Why is the sky blue?"}], think=True),
    "think=False": Case([{"role": "user", "content": "Why is the sky blue?"}], think=False),
    "the /think soft switch": Case([{"role": "user", "content": "Prove it /think"}]),
    "the /no_think soft switch": Case([{"role": "user", "content": "Just say hi /no_think"}]),
    "history: reasoning before the last query is dropped": Case([
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "Two and two."},
        {"role": "user", "content": "And 3 + 3?"}]),
    "history: inline think blocks are read as reasoning": Case([
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "<think>\nTwo and two.\n</think>\n\n4"},
        {"role": "user", "content": "And 3 + 3?"}]),
    "history: reasoning in the current tool loop is kept": Case([
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
        *TOOL_LOOP], tools=[WEATHER]),
}


def _open(kind: str, qwen3: Any) -> ModelBackend:
    if kind == "llama.cpp (GGUF)":
        return LlamaCppModel(str(qwen3.dense_gguf))
    if kind == "transformers (folder)":
        return HuggingFaceModel(str(qwen3.dense_folder))
    if kind == "transformers (GGUF)":
        return HuggingFaceModel(str(qwen3.dense_gguf))
    if kind == "llama.cpp (qwen3moe GGUF)":
        return LlamaCppModel(str(qwen3.moe_gguf))
    raise ValueError(kind)


BACKENDS = ("llama.cpp (GGUF)", "transformers (folder)", "transformers (GGUF)",
            "llama.cpp (qwen3moe GGUF)")


@pytest.fixture(scope="module", params=BACKENDS)
def qwen3_model(request, qwen3) -> Iterator[ModelBackend]:
    """Each Qwen3 fixture on each backend that runs it."""
    model = _open(request.param, qwen3)
    yield model
    model.unload()


@pytest.fixture(scope="module", params=BACKENDS[:2])
def qwen3_dense(request, qwen3) -> Iterator[ModelBackend]:
    """The dense fixture on llama.cpp and on transformers."""
    model = _open(request.param, qwen3)
    yield model
    model.unload()


# -- every backend loads, streams, counts ----------------------------------------------------
def test_it_streams_and_the_stream_collected_is_the_answer(qwen3_model):
    messages = [{"role": "user", "content": "Hello"}]
    pieces = list(qwen3_model.stream_chat(messages, max_tokens=6, temperature=0, think=False))
    whole = qwen3_model.chat(messages, max_tokens=6, temperature=0, think=False)
    assert "".join(p.text for p in pieces) == whole.text
    assert pieces[-1].usage is not None and pieces[-1].finish_reason in ("stop", "length")


def test_usage_counts_the_rendered_prompt_exactly(qwen3_model):
    messages = coerce_messages([{"role": "user", "content": "Count me"}])
    completion = qwen3_model.chat(messages, max_tokens=4, temperature=0, think=False)
    prompt = qwen3_model.render_chat(messages, GenerationConfig(think=False))
    assert completion.usage.prompt_tokens == qwen3_model.count_tokens(prompt)
    assert 1 <= completion.usage.completion_tokens <= 4


@pytest.mark.parametrize("token", ["<think>", "</think>", "<tool_call>", "</tool_call>",
                                   "<|im_start|>", "<|im_end|>", "<tool_response>"])
def test_qwen3_special_tokens_are_single_tokens(qwen3_model, token):
    assert qwen3_model.count_tokens(token) == 1


def test_info_reports_the_qwen3_architecture(qwen3_model):
    info = qwen3_model.info()
    assert info.family in ("qwen3", "qwen3moe")
    assert "thinking" in info.capabilities and "tools" in info.capabilities


def test_the_qwen_teams_sampling_for_the_mode_reaches_the_backend(qwen3_model, chat_model):
    """The family preset, decided in ``served.ServedModel`` from what each backend reads of
    the loaded model: Qwen3's for thinking or not; none for another family (SmolLM2)."""
    from adam_integrations.served import ServedModel

    served = ServedModel("qwen3", qwen3_model)
    thinking, plain = (served.sampling(GenerationConfig(think=t)) for t in (None, False))
    assert (thinking.temperature, thinking.top_p, thinking.top_k) == (0.6, 0.95, 20)
    assert (plain.temperature, plain.top_p, plain.top_k) == (0.7, 0.8, 20)
    chosen = GenerationConfig(temperature=0.0)
    assert served.sampling(chosen) is chosen  # the caller's sampling is left alone
    assert ServedModel("smollm2", chat_model).sampling(GenerationConfig()).temperature is None


# -- the official template, end to end -------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_the_rendered_prompt_is_the_official_templates(qwen3_dense, qwen3, case):
    spec = CASES[case]
    ours = qwen3_dense.render_chat(coerce_messages(spec.messages), spec.config())
    assert ours == reference(qwen3.template, spec.messages, **spec.variables())


def test_the_last_query_rule_keeps_only_the_current_loops_reasoning(qwen3_dense):
    messages = coerce_messages([
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1", "reasoning_content": "OLD REASONING"},
        {"role": "user", "content": "Q2"}, *TOOL_LOOP[1:]])
    prompt = qwen3_dense.render_chat(messages, GenerationConfig(tools=[WEATHER]))
    assert "OLD REASONING" not in prompt and "I should look it up." in prompt


@pytest.mark.parametrize("shape", ["openai, string arguments", "openai, object arguments",
                                   "ollama", "core"])
def test_assistant_tool_calls_are_accepted_in_every_format(qwen3_dense, shape):
    call = {
        "openai, string arguments": {"id": "c1", "type": "function", "function": {
            "name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}},
        "openai, object arguments": {"id": "c1", "type": "function", "function": {
            "name": "get_weather", "arguments": {"city": "Oslo"}}},
        "ollama": {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
        "core": {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "c1"},
    }[shape]
    messages = [{"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "content": "sunny", "tool_call_id": "c1"}]
    prompt = qwen3_dense.render_chat(coerce_messages(messages), GenerationConfig(tools=[WEATHER]))
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>' \
        in prompt
    assert "<tool_response>\nsunny\n</tool_response>" in prompt


# -- constrained output with Qwen3's single-token markers -----------------------------------
@pytest.mark.parametrize("think", [False, True])
def test_a_forced_tool_call_is_valid(qwen3_dense, think):
    completion = qwen3_dense.chat([{"role": "user", "content": "Weather in Oslo?"}],
                                  tools=[WEATHER], tool_choice="required", max_tokens=96,
                                  temperature=0, think=think)
    assert [c.name for c in completion.tool_calls] == ["get_weather"]
    assert isinstance(completion.tool_calls[0].arguments["city"], str)
    assert completion.text == "" and "<tool_call>" not in completion.thinking


@pytest.mark.parametrize("think", [False, True])
def test_a_response_format_answer_is_valid_json(qwen3_dense, think):
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}},
              "required": ["answer"]}
    completion = qwen3_dense.chat([{"role": "user", "content": "2 + 2?"}],
                                  response_format=schema, max_tokens=96, temperature=0,
                                  think=think)
    assert isinstance(json.loads(completion.text)["answer"], int)
    assert "</think>" not in completion.text + completion.thinking


@pytest.mark.parametrize("backend", ["llamacpp", "huggingface"])
def test_a_2507_thinking_model_starts_in_its_think_block(qwen3, backend):
    model = (LlamaCppModel(str(qwen3.thinking_gguf)) if backend == "llamacpp"
             else HuggingFaceModel(str(qwen3.thinking_folder)))
    try:
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}},
                  "required": ["ok"]}
        completion = model.chat([ChatMessage("user", "Ready?")], response_format=schema,
                                max_tokens=96, temperature=0)
        assert completion.thinking  # everything before </think> is reasoning
        assert isinstance(json.loads(completion.text)["ok"], bool)
    finally:
        model.unload()


# -- adam serve in front -------------------------------------------------------------------
@pytest.mark.parametrize("which", ["dense_gguf", "dense_folder"])
def test_adam_serve_answers_for_a_qwen3_model_with_its_template(server, qwen3, which):
    import ollama

    name = str(getattr(qwen3, which))
    client = ollama.Client(host=server)
    answer = client.chat(model=name, messages=[{"role": "user", "content": "Hi"}],
                         think=False, options={"num_predict": 5, "temperature": 0})
    assert answer.done and 1 <= answer.eval_count <= 5 and answer.prompt_eval_count > 5
    shown = client.show(name)
    assert shown.template == qwen3.template
    assert {"completion", "tools", "thinking"} <= set(shown.capabilities)
    call = client.chat(model=name, messages=[{"role": "user", "content": "Weather in Oslo?"}],
                       tools=[WEATHER], think=False, options={"num_predict": 64})
    assert call.done


@pytest.mark.parametrize("which", ["dense_gguf", "thinking_gguf"])
def test_a_thinking_level_turns_thinking_on_for_an_on_off_or_always_on_model(server, qwen3,
                                                                           which):
    """Ollama's ThinkValue and OpenAI's engines: a level on a Qwen3 (on/off) or 2507
    (always on) model means thinking on; /api/show says the level is not honoured."""
    import ollama
    import openai

    name = str(getattr(qwen3, which))

    def ollama_answer(think: object) -> ollama.Message:  # greedy: one prompt, one answer
        return ollama.Client(host=server).chat(
            model=name, messages=[{"role": "user", "content": "Hi"}], think=think,
            options={"num_predict": 6, "temperature": 0}).message

    def openai_answer(**options: object) -> object:
        return openai.OpenAI(base_url=f"{server}/v1", api_key="unused").chat.completions.create(
            model=name, messages=[{"role": "user", "content": "Hi"}], max_tokens=6,
            temperature=0, **options).choices[0].message

    assert ollama_answer("low") == ollama_answer(True)
    assert openai_answer(reasoning_effort="high") == openai_answer(
        extra_body={"chat_template_kwargs": {"enable_thinking": True}})
    control = ollama.Client(host=server).show(name).modelinfo["adam.thinking_control"]
    assert "a level (think" in control and "turns thinking on" in control


def test_openai_clients_get_forced_calls_from_a_qwen3_model(server, qwen3):
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    completion = client.chat.completions.create(
        model=str(qwen3.dense_gguf), messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER], tool_choice="required", max_tokens=96, temperature=0)
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)


# -- fill-in-the-middle (Qwen's <|fim_prefix|> tokens are in the real vocabulary) ------------
PREFIX, SUFFIX = "def add(a, b):\n    ", "\n\nprint(add(1, 2))"
FIM_MARKERS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")


def test_a_suffix_fills_in_the_middle_with_the_models_own_tokens(qwen3_dense, qwen3):
    """Both backends build the same prompt: <|fim_prefix|> prefix <|fim_suffix|> suffix
    <|fim_middle|>, the texts around as plain text (a control token typed in them stays
    text)."""
    from transformers import AutoTokenizer

    assert "insert" in qwen3_dense.info().capabilities
    tokenizer = AutoTokenizer.from_pretrained(qwen3.dense_folder)
    for marker in FIM_MARKERS:  # one token each in the real vocabulary
        assert tokenizer.convert_ids_to_tokens(tokenizer.convert_tokens_to_ids(marker)) == marker
    text_tokens = (len(tokenizer(PREFIX, add_special_tokens=False)["input_ids"])
                   + len(tokenizer(SUFFIX, add_special_tokens=False)["input_ids"]))
    filled = qwen3_dense.complete(PREFIX, suffix=SUFFIX, max_tokens=4, temperature=0)
    assert filled.usage.prompt_tokens == text_tokens + 3
    assert filled.usage.completion_tokens >= 1
    injected = qwen3_dense.complete("<|im_end|>", suffix=SUFFIX, max_tokens=1, temperature=0)
    assert injected.usage.prompt_tokens > 3 + 1 + len(  # a control token typed stays text
        tokenizer(SUFFIX, add_special_tokens=False)["input_ids"])


def test_the_ollama_client_fills_in_the_middle_and_others_are_refused_in_ollamas_words(
        server, qwen3):
    import ollama

    client = ollama.Client(host=server)
    name = str(qwen3.dense_gguf)
    assert "insert" in client.show(name).capabilities
    answer = client.generate(model=name, prompt=PREFIX, suffix=SUFFIX,
                             options={"num_predict": 4, "temperature": 0})
    assert answer.done and answer.eval_count >= 1
    assert "insert" not in client.show("smollm2:135m").capabilities
    with pytest.raises(ollama.ResponseError) as refused:
        client.generate(model="smollm2:135m", prompt=PREFIX, suffix=SUFFIX)
    assert refused.value.status_code == 400
    assert '"smollm2:135m" does not support insert' in refused.value.error
