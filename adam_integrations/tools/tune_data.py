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

import functools
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from adam_integrations.core.chat_template import render_chat_template
from adam_integrations.core.errors import AdamError, InvalidRequestError
from adam_integrations.core.prompt import TemplateTraits, template_inputs
from adam_integrations.core.tools import ToolSpec, coerce_tools
from adam_integrations.core.types import ChatMessage, GenerationConfig

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
    tools: tuple[ToolSpec, ...] = ()
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
        return "conversational", TrainingExample(messages=messages,
                                                 tools=tuple(coerce_tools(tools)))
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


# -- tokens ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenizedData:
    """A data file as the trainer takes it: each sequence's ``input_ids`` and
    ``assistant_masks`` (1 where the loss applies: the assistant's turns with their
    end-of-turn token, a completion, or every token of a text), at most ``max_length``
    tokens each."""

    sequences: tuple[dict[str, list[int]], ...]
    tokens: int
    trained_tokens: int
    truncated: int
    """Conversations or completions cut at ``max_length`` (their tail is not learnt)."""


def tokenize_training_data(data: TrainingData, tokenizer: Any, *, max_length: int,
                           model_name: str) -> TokenizedData:
    """``data`` tokenized by ``tokenizer`` (a transformers fast tokenizer), conversations
    rendered by its chat template exactly as the backends render a request (the same
    ``template_inputs``: tools, thinking, tool turns for templates without tools), so the
    model learns the prompt it will be given. Texts longer than ``max_length`` are cut
    into consecutive sequences (continued pre-training); a conversation or completion is
    truncated. InvalidRequestError when nothing is left to learn."""
    renderer = _Renderer(tokenizer, model_name, data)
    sequences: list[dict[str, list[int]]] = []
    truncated = 0
    for number, example in enumerate(data.examples, 1):
        try:
            text, spans = renderer.spans(example)
        except AdamError as error:
            raise InvalidRequestError(f"{data.path}: example {number}: {error}") from None
        encoded = tokenizer(text, add_special_tokens=data.kind == "text" or
                            renderer.template is None, return_offsets_mapping=True)
        ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
        mask = [int(any(start < end_ and end > start_ for start_, end_ in spans))
                for start, end in offsets]
        if data.kind == "text":
            for begin in range(0, len(ids), max_length):
                sequences.append({"input_ids": ids[begin:begin + max_length],
                                  "assistant_masks": mask[begin:begin + max_length]})
            continue
        if len(ids) > max_length:
            truncated += 1
        sequences.append({"input_ids": ids[:max_length],
                          "assistant_masks": mask[:max_length]})
    sequences = [s for s in sequences if any(s["assistant_masks"])]
    if not sequences:
        raise InvalidRequestError(
            f"{data.path}: no example has a token to learn within max_length={max_length} "
            "(each answer starts after that many tokens); raise max_length")
    return TokenizedData(tuple(sequences), sum(len(s["input_ids"]) for s in sequences),
                         sum(sum(s["assistant_masks"]) for s in sequences), truncated)


class _Renderer:
    """An example as one text and the character spans the loss is on."""

    def __init__(self, tokenizer: Any, model_name: str, data: TrainingData) -> None:
        template = getattr(tokenizer, "chat_template", None)
        self.template = template if isinstance(template, str) else None
        self.eos = tokenizer.eos_token or ""
        self.model_name = model_name
        self.special = {key: value for key, value in tokenizer.special_tokens_map.items()
                        if isinstance(value, (str, list))}
        chat = data.kind == "conversational" or any(
            not isinstance(e.prompt, str) for e in data.examples if e.prompt is not None)
        if chat and self.template is None:
            raise InvalidRequestError(
                f"{model_name} has no chat template, so it cannot learn conversations; "
                "train it on texts or prompt-completion texts, or tune its instruct model")

    def spans(self, example: TrainingExample) -> tuple[str, list[tuple[int, int]]]:
        if example.text is not None:
            text = example.text + self.eos
            return text, [(0, len(text))]
        if isinstance(example.prompt, str) and isinstance(example.completion, str):
            text = example.prompt + example.completion + self.eos
            return text, [(len(example.prompt), len(text))]
        if example.prompt is not None:
            prompt, completion = tuple(example.prompt), tuple(example.completion or ())
            return self._conversation((*prompt, *completion), (), first=len(prompt))
        return self._conversation(example.messages, example.tools, first=0)

    def _render(self, messages: tuple[ChatMessage, ...], tools: tuple[ToolSpec, ...],
                generation_prompt: bool) -> str:
        config = GenerationConfig(tools=list(tools))
        dicts, variables = template_inputs(list(messages), config,
                                           TemplateTraits.of(self.template), self.model_name)
        return render_chat_template(str(self.template), dicts,
                                    add_generation_prompt=generation_prompt,
                                    **{**self.special, **variables})

    def _conversation(self, messages: tuple[ChatMessage, ...], tools: tuple[ToolSpec, ...],
                      *, first: int) -> tuple[str, list[tuple[int, int]]]:
        """The conversation rendered, and each assistant turn's span from ``first`` on:
        from the end of its generation prompt through the template's end-of-turn text (so
        the model learns to stop). Found by position, not by content: templates render
        a turn differently once later turns follow (Qwen3 drops earlier reasoning)."""
        full = self._render(messages, tools, False)
        spans = []
        for index in range(first, len(messages)):
            if messages[index].role != "assistant":
                continue
            # the turn starts where the generation prompt stops matching: where it ends,
            # or, for templates whose prompt opens a think block that history turns no
            # longer show (Qwen3 2507 Thinking), after the role header
            before = self._render(messages[:index], tools, True)
            start = _common_prefix(before, full)
            if start < len(self._render(messages[:index], tools, False)):
                raise InvalidRequestError(
                    f"the chat template renders the turns before assistant turn {index + 1} "
                    "differently once it follows, so its tokens cannot be found; train on "
                    "prompt-completion examples instead")
            end = full.find(self._end_of_turn, start) if self._end_of_turn else -1
            end = len(full) if end < 0 else end + len(self._end_of_turn)
            spans.append((start, end))
        return full, spans

    @functools.cached_property
    def _end_of_turn(self) -> str:
        """What the template writes after an assistant's text (``<|im_end|>\n``,
        ``<|eot_id|>``...), seen by rendering a probe; "" when it writes nothing."""
        probe = "PROBE-ANSWER"
        text = self._render((ChatMessage(role="user", content="x"),
                             ChatMessage(role="assistant", content=probe)), (), False)
        return text[text.rfind(probe) + len(probe):] if probe in text else ""


def _common_prefix(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    size = min(len(a), len(b))
    return next((i for i in range(size) if a[i] != b[i]), size)
