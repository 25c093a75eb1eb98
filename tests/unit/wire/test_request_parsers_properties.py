"""Property tests (hypothesis) for what reads requests: whatever JSON a client sends, the
parsers either return a value or raise an ``AdamError`` (a 400 with a message), never
another exception; and what they return keeps what was sent. The examples are derived
deterministically (``derandomize``), so CI runs the same ones every time; set it to False
locally and vary ``--hypothesis-seed`` to explore more (the bugs found that way are fixed:
non-string roles, ``stop: true``, non-object tool parameters)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adam_integrations.catalog.names import resolve_reference as resolve
from adam_integrations.core.errors import AdamError, InvalidRequestError
from adam_integrations.core.loaded import parse_keep_alive
from adam_integrations.core.output import ResponseParser
from adam_integrations.core.tools import coerce_response_format, coerce_tool_choice, coerce_tools
from adam_integrations.core.types import ChatMessage, GenerationConfig
from adam_integrations.server.names import check_alias, check_model_name
from adam_integrations.wire import ollama as ollama_wire
from adam_integrations.wire import openai as openai_wire

SETTINGS = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=20)
ROLES = st.sampled_from(["system", "user", "assistant", "tool", "developer", "bot", ""])
tool_call = st.fixed_dictionaries({}, optional={
    "id": json_values, "type": st.just("function") | json_values,
    "function": st.fixed_dictionaries({}, optional={
        "name": st.text(max_size=10) | json_values,
        "arguments": json_values | st.text(max_size=30), "index": json_values})})
message = st.fixed_dictionaries({"role": ROLES | json_values}, optional={
    "content": st.text() | json_values, "thinking": json_values,
    "reasoning_content": json_values, "tool_calls": st.lists(tool_call, max_size=3)
    | json_values, "tool_name": json_values, "tool_call_id": json_values,
    "name": json_values, "images": json_values})
messages = st.lists(message, max_size=4) | json_values
tool = st.fixed_dictionaries({"type": st.just("function") | json_values}, optional={
    "function": st.fixed_dictionaries({}, optional={
        "name": st.text(max_size=10) | json_values, "description": json_values,
        "parameters": json_values | st.just({"type": "object", "properties": {}})})})
options = st.dictionaries(st.sampled_from([*ollama_wire.OPTIONS, "num_ctx", "mirostat"]),
                          json_values, max_size=5) | json_values
request_body = st.fixed_dictionaries({}, optional={
    "options": options, "format": json_values | st.just("json"), "think": json_values,
    "tools": st.lists(tool, max_size=2) | json_values, "tool_choice": json_values,
    "max_tokens": json_values, "max_completion_tokens": json_values,
    "temperature": json_values, "top_p": json_values, "seed": json_values,
    "stop": json_values, "response_format": json_values, "reasoning_effort": json_values,
    "presence_penalty": json_values, "frequency_penalty": json_values})


MESSAGE_PARSERS = (
    lambda raw: ollama_wire.ChatRequest.parse({"model": "m", "messages": raw}).chat_messages(),
    lambda raw: openai_wire.ChatCompletionRequest.parse(
        {"model": "m", "messages": raw}).chat_messages())
"""Each dialect's chat messages as the core's messages."""
HELLO = [{"role": "user", "content": "hi"}]
CONFIG_PARSERS = (
    lambda body: ollama_wire.ChatRequest.parse({**body, "model": "m"}).to_config(),
    lambda body: openai_wire.ChatCompletionRequest.parse(
        {**body, "model": "m", "messages": HELLO}).to_config())
"""Each dialect's chat settings as a GenerationConfig."""


def _returns_or_refuses(parse: Any, *args: Any) -> Any:
    try:
        return parse(*args)
    except AdamError as error:
        assert str(error), "an error must say what was wrong"
        return None


@SETTINGS
@given(raw=messages)
def test_message_parsers_return_messages_or_refuse(raw):
    for parse in MESSAGE_PARSERS:
        parsed = _returns_or_refuses(parse, raw)
        if parsed is not None:
            assert all(isinstance(m, ChatMessage) for m in parsed)
            assert len(parsed) == len(raw or [])  # null: no messages (Ollama: a load)


@SETTINGS
@given(role=st.sampled_from(["user", "system", "assistant"]), content=st.text())
def test_text_content_is_kept_exactly(role, content):
    for parse in MESSAGE_PARSERS:
        [parsed] = parse([{"role": role, "content": content}])
        assert (parsed.role, parsed.content) == (role, content)


@SETTINGS
@given(body=request_body)
def test_option_parsers_return_a_config_or_refuse(body):
    for parse in CONFIG_PARSERS:
        config = _returns_or_refuses(parse, body)
        assert config is None or isinstance(config, GenerationConfig)


@SETTINGS
@given(num_predict=st.integers(1, 10**6), temperature=st.floats(0, 2),
       seed=st.integers(-(2**63), 2**64 - 1))
def test_valid_options_arrive_as_sent(num_predict, temperature, seed):
    config = CONFIG_PARSERS[0]({"options": {
        "num_predict": num_predict, "temperature": temperature, "seed": seed}})
    assert (config.max_tokens, config.temperature, config.seed) == (num_predict, temperature,
                                                                    seed)


@SETTINGS
@given(tools=st.lists(tool, max_size=3) | json_values, choice=json_values
       | st.sampled_from(["auto", "none", "required"]), fmt=json_values)
def test_tool_and_format_coercions_return_or_refuse(tools, choice, fmt):
    specs = _returns_or_refuses(coerce_tools, tools)
    if specs is not None:
        _returns_or_refuses(coerce_tool_choice, choice, specs)
    _returns_or_refuses(coerce_response_format, fmt)


@SETTINGS
@given(pieces=st.lists(st.lists(st.sampled_from(
    [*"<>/{}\":, abtoolcalhinkname", "<tool_call>", "</tool_call>", "<think>", "</think>",
     '{"name": "f", "arguments": {', "}}"]), max_size=6).map("".join), max_size=8))
def test_the_model_output_parser_never_raises(pieces):
    """Tool calls and thinking read from model output: whatever the model writes, the
    parser answers with text, thinking and tool calls whose arguments are objects."""
    parser = ResponseParser(tool_names=["f"], parse_tool_calls=True)
    chunks = [c for piece in pieces for c in parser.push(piece)] + parser.finish()
    for chunk in chunks:
        for call in chunk.tool_calls:
            assert isinstance(call.arguments, dict)


@SETTINGS
@given(name=st.text(max_size=80) | json_values)
def test_model_names_are_checked_or_refused(name):
    checked = _returns_or_refuses(check_model_name, name)
    if checked is not None:
        assert ".." not in checked and not checked.startswith(("/", "~", "\\"))
        _returns_or_refuses(lambda n: resolve(n, local_paths=False), checked)
    alias = _returns_or_refuses(check_alias, name)
    assert alias is None or (alias.count("/") <= 2 and ":" not in alias.split("/")[-1][:1])


@SETTINGS
@given(name=st.from_regex(r"[a-z][a-z0-9_.-]{0,20}(:[a-z0-9][a-z0-9_.-]{0,10})?",
                          fullmatch=True))
def test_plain_ollama_names_are_accepted_and_never_read_as_paths(name):
    if ".." in name or name.endswith(".gguf"):
        return
    assert check_model_name(name) == name
    try:
        source = resolve(name, local_paths=False)
    except AdamError:
        return
    assert source.kind != "folder" or source.embedded


@SETTINGS
@given(value=json_values | st.floats() | st.from_regex(r"-?[0-9]{1,6}(\.[0-9]+)?(ms|s|m|h)?",
                                         fullmatch=True))
def test_keep_alive_parses_or_refuses(value):
    try:
        seconds = parse_keep_alive(value)
    except InvalidRequestError:
        return
    assert seconds is None or (isinstance(seconds, float) and 0 <= seconds < float("inf"))
