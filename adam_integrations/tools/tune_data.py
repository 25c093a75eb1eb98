"""Training data for ``adam tune``, read in the shapes people already have (TRL's dataset
formats, which OpenAI's fine-tuning files share):

- **conversational** JSONL: ``{"messages": [...], "tools": [...]}``, the messages as
  OpenAI's chat API takes them (``ChatMessage.coerce`` reads them, so LangChain's and
  LlamaIndex's shapes too), with at least one assistant turn: the loss is on the
  assistant's tokens;
- **prompt-completion** JSONL: ``{"prompt": ..., "completion": ...}``, each a text or (as
  TRL takes them) a list of messages, the completion's ending with the assistant;
- **text**: ``{"text": ...}`` JSONL, or a plain text file (any other suffix) for
  continued pre-training.

A ``.json`` file may be one JSON array of such objects. Every line is read before any
training starts: one that is not JSON, not an object, of another shape than the file's
first, with an unknown role or no assistant turn is an ``InvalidRequestError`` naming the
file and the line, and nothing is written.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> data = folder / "chat.jsonl"
    >>> _ = data.write_text('{"messages": [{"role": "user", "content": "Hi"}, '
    ...                     '{"role": "assistant", "content": "Hello!"}]}\\n')
    >>> read = read_training_data(data)
    >>> read.kind, len(read.examples), read.examples[0].messages[-1].content
    ('conversational', 1, 'Hello!')
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from adam_integrations.core.errors import AdamError, InvalidRequestError
from adam_integrations.core.types import ChatMessage

Kind = Literal["conversational", "prompt-completion", "text"]
_SHAPES: dict[Kind, str] = {
    "conversational": '{"messages": [...]}',
    "prompt-completion": '{"prompt": ..., "completion": ...}',
    "text": '{"text": "..."}',
}
_JSON_SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True)
class TrainingExample:
    """One example: a conversation (``messages``, with the ``tools`` it may call), a
    ``prompt`` and its ``completion`` (each a text or messages), or a ``text``."""

    messages: tuple[ChatMessage, ...] = ()
    tools: tuple[Mapping[str, Any], ...] = ()
    prompt: str | tuple[ChatMessage, ...] | None = None
    completion: str | tuple[ChatMessage, ...] | None = None
    text: str | None = None


@dataclass(frozen=True)
class TrainingData:
    """A data file read whole: its kind and its examples, in order."""

    path: Path
    kind: Kind
    examples: tuple[TrainingExample, ...]


def read_training_data(path: str | os.PathLike[str]) -> TrainingData:
    """The examples in ``path`` (see the module docstring for the shapes), every line
    checked; InvalidRequestError naming the file and line for the first bad one."""
    path = Path(path)
    if not path.is_file():
        raise InvalidRequestError(f"no data file {path}: give a JSONL file of examples or "
                                  "a text file")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequestError(f"{path} is not UTF-8 text (byte {error.start}); save it "
                                  "as UTF-8") from None
    if not content.strip():
        raise InvalidRequestError(f"{path} is empty: it holds no examples")
    if path.suffix.lower() not in _JSON_SUFFIXES:
        return TrainingData(path, "text", (TrainingExample(text=content),))
    kind: Kind | None = None
    examples = []
    for where, record in _records(path, content):
        try:
            example_kind, example = _example(record)
        except AdamError as error:
            raise InvalidRequestError(f"{path}:{where}: {error}") from None
        if kind is not None and example_kind != kind:
            raise InvalidRequestError(
                f"{path}:{where}: a {example_kind} example ({_SHAPES[example_kind]}) in a "
                f"file of {kind} examples ({_SHAPES[kind]}, as its first); keep one shape "
                "per file")
        kind = example_kind
        examples.append(example)
    if kind is None:  # an empty JSON array
        raise InvalidRequestError(f"{path} holds no examples")
    return TrainingData(path, kind, tuple(examples))


def _records(path: Path, content: str) -> Iterator[tuple[str, Any]]:
    """Each JSON value in the file, with where it is (``line N``, or ``item N`` of an
    array)."""
    if path.suffix.lower() == ".json" and content.lstrip().startswith("["):
        try:
            items = json.loads(content)
        except ValueError as error:
            raise InvalidRequestError(f"{path}: not valid JSON ({error})") from None
        for index, item in enumerate(items, 1):
            yield f"item {index}", item
        return
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except ValueError as error:
            raise InvalidRequestError(
                f"{path}:line {number}: not valid JSON ({error}); each line must be one "
                "JSON object") from None


def _example(record: Any) -> tuple[Kind, TrainingExample]:
    if not isinstance(record, Mapping):
        raise InvalidRequestError(
            f"an example must be a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages = _messages(record["messages"], "messages")
        tools = record.get("tools") or []
        if not isinstance(tools, list) or not all(isinstance(t, Mapping) for t in tools):
            raise InvalidRequestError("tools must be a list of tool objects")
        return "conversational", TrainingExample(messages=messages, tools=tuple(tools))
    if "prompt" in record or "completion" in record:
        if "prompt" not in record or "completion" not in record:
            missing = "prompt" if "prompt" not in record else "completion"
            raise InvalidRequestError(f"{missing} is missing: a prompt-completion example "
                                      "has both")
        prompt, completion = record["prompt"], record["completion"]
        if isinstance(prompt, str) and isinstance(completion, str):
            if not completion:
                raise InvalidRequestError("completion is empty: there is nothing to learn")
            return "prompt-completion", TrainingExample(prompt=prompt, completion=completion)
        if isinstance(prompt, list) and isinstance(completion, list):
            return "prompt-completion", TrainingExample(
                prompt=_messages(prompt, "prompt", answered=False),
                completion=_messages(completion, "completion"))
        raise InvalidRequestError("prompt and completion must both be texts or both be "
                                  "lists of messages")
    if "text" in record:
        if not isinstance(record["text"], str) or not record["text"]:
            raise InvalidRequestError("text must be a non-empty string")
        return "text", TrainingExample(text=record["text"])
    raise InvalidRequestError(
        f"an example has messages, prompt and completion, or text; this one has "
        f"{', '.join(map(repr, record)) or 'no field'} (shapes: "
        f"{'; '.join(_SHAPES.values())})")


def _messages(raw: Any, field: str, *, answered: bool = True) -> tuple[ChatMessage, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRequestError(f"{field} must be a non-empty list of messages")
    messages = tuple(ChatMessage.coerce(message) for message in raw)
    if answered and not any(message.role == "assistant" for message in messages):
        raise InvalidRequestError(
            f"{field} has no assistant turn: the model learns from the assistant's "
            "answers, so each example needs at least one")
    return messages
