"""``adam tune``'s data: the three shapes read as TRL and OpenAI's fine-tuning files write
them, and every bad line refused with the file and line named, before anything runs."""

from __future__ import annotations

import json

import pytest

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.tools.tune_data import read_training_data

CHAT = {"messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Capital of France?"},
                     {"role": "assistant", "content": "Paris."}]}
TOOL_CHAT = {"messages": [
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
     "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "4 C"},
    {"role": "assistant", "content": "4 C in Oslo."}],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]}


def _lines(tmp_path, *records, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records)
                    + "\n", encoding="utf-8")
    return path


def test_conversations_with_tools_are_read_as_messages(tmp_path):
    read = read_training_data(_lines(tmp_path, CHAT, "", TOOL_CHAT))  # a blank line is skipped
    assert read.kind == "conversational" and len(read.examples) == 2
    called = read.examples[1]
    assert called.messages[1].tool_calls[0].arguments == {"city": "Oslo"}
    assert called.tools[0].name == "weather"


def test_prompt_completion_texts_and_messages_and_plain_text(tmp_path):
    pairs = read_training_data(_lines(tmp_path, {"prompt": "2+2=", "completion": "4"}))
    assert (pairs.kind, pairs.examples[0].completion) == ("prompt-completion", "4")
    turns = read_training_data(_lines(tmp_path, {
        "prompt": [{"role": "user", "content": "Hi"}],
        "completion": [{"role": "assistant", "content": "Hello"}]}))
    assert turns.examples[0].completion[0].content == "Hello"
    text = tmp_path / "notes.md"
    text.write_text("# Notes\n\nSome domain text.\n", encoding="utf-8")
    assert read_training_data(text).examples[0].text.startswith("# Notes")
    array = tmp_path / "data.json"
    array.write_text(json.dumps([{"text": "a"}, {"text": "b"}]), encoding="utf-8")
    assert [e.text for e in read_training_data(array).examples] == ["a", "b"]


@pytest.mark.parametrize(("records", "said"), [
    (["{not json"], "line 1: not valid JSON"),
    ([CHAT, "[1, 2]"], "line 2: an example must be a JSON object, got list"),
    ([{"prompt": "x"}], "line 1: completion is missing"),
    ([{"input": "x", "output": "y"}], "line 1: an example has messages, prompt and "
                                      "completion, or text; this one has 'input', 'output'"),
    ([{"messages": [{"role": "user", "content": "Hi"}]}], "line 1: messages has no "
                                                         "assistant turn"),
    ([{"messages": [{"role": "wizard", "content": "Hi"}]}], "line 1: unknown message role "
                                                            "'wizard'"),
    ([{"messages": []}], "line 1: messages must be a non-empty list of messages"),
    ([CHAT, {"text": "plain"}], "line 2: a text example"),
    ([{"prompt": "a", "completion": [{"role": "assistant", "content": "b"}]}],
     "line 1: prompt and completion must both be texts"),
    ([{"text": ""}], "line 1: text must be a non-empty string"),
])
def test_a_bad_line_is_named_with_its_file(tmp_path, records, said):
    path = _lines(tmp_path, *records)
    with pytest.raises(InvalidRequestError) as refused:
        read_training_data(path)
    assert str(refused.value).startswith(f"{path}:{said}"), str(refused.value)


def test_unreadable_files_are_refused_clearly(tmp_path):
    for content, said in ((b"", "is empty"), (b"\xff\xfe\x00bad", "is not UTF-8"),
                          (b"[]", "holds no examples")):
        path = tmp_path / "data.json"
        path.write_bytes(content)
        with pytest.raises(InvalidRequestError, match=said):
            read_training_data(path)
    with pytest.raises(InvalidRequestError, match="no data file"):
        read_training_data(tmp_path / "missing.jsonl")
