"""ScriptedBackend: a backend that answers by a fixed rule, for the fast test tier.

It lets the plumbing around a backend (the manager, both framework adapters, the server's
two wire formats, the Ollama client backend) be tested in seconds; the real-model tests
in ``tests/integration`` remain the proof that real models behave.

Its rule, so a test can say what the answer will be:

- the answer to a conversation is ``echo: <last user message>``, or exactly ``<text>``
  when that message is ``say: <text>``; a raw completion answers the same way;
- it streams one word per chunk, then a last chunk with ``finish_reason`` and ``usage``
  (prompt tokens = words in the prompt, completion tokens = chunks), and ``finish_reason``
  "length" when ``max_tokens`` cut it;
- ``think=True`` (or a ``think:`` prefix on the message) first streams the reasoning
  ``I think.``;
- a ``slow:`` prefix waits ``SLOW_SECONDS`` before each word (for limits and timeouts);
- a forced tool choice answers with a call of the first forced tool whose arguments are
  the answer parsed as JSON (``{}`` when it is not an object);
- embeddings are 8 floats from the text's sha256, the same for the same text.

Every request it receives is kept in ``requests`` (messages or prompt, and config).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adam_integrations.core.backend import ModelBackend
from adam_integrations.core.prompt import insert_unsupported
from adam_integrations.core.types import (
    ChatMessage,
    Chunk,
    EmbeddingKind,
    GenerationConfig,
    ModelInfo,
    ModelSource,
    ToolCall,
    Usage,
)

NAME = "scripted"
SLOW_SECONDS = 0.1
SOURCE = ModelSource("folder", "scripted://model", "scripted-model",
                     "the fast tier's scripted backend")


def scripted_names(name: str) -> ModelSource | None:
    """The resolver lookup for the name ``scripted``."""
    return SOURCE if name == NAME else None


@dataclass
class Request:
    """One request the backend received."""

    messages: list[ChatMessage] | None
    prompt: str | None
    config: GenerationConfig


class ScriptedBackend(ModelBackend):
    """Answers by the rule in the module docstring; loads and unloads instantly."""

    name = NAME

    def __init__(self, model: Any = None, **options: Any) -> None:
        self.source = model if isinstance(model, ModelSource) else SOURCE
        self.options = options
        self.requests: list[Request] = []
        self._loaded = False

    def load(self) -> None:
        self._loaded = True

    def unload(self) -> None:
        self._loaded = False

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def info(self) -> ModelInfo:
        self.load()
        return ModelInfo(name=self.source.name, backend=self.name, family="scripted",
                         parameter_count=8, context_window=4096, embedding_dimension=8,
                         capabilities=("completion", "chat", "tools", "thinking",
                                       "embedding"), device="cpu")

    def chat_template(self) -> str | None:
        return "{{ messages }}"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _stream_chat(self, messages: list[ChatMessage], config: GenerationConfig
                     ) -> Iterator[Chunk]:
        self.load()
        self.requests.append(Request(messages, None, config))
        user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        prompt_words = sum(len(m.content.split()) for m in messages)
        return _answer(user, prompt_words, config)

    def _stream_complete(self, prompt: str, config: GenerationConfig,
                         suffix: str | None = None) -> Iterator[Chunk]:
        self.load()
        if suffix is not None:  # a vocabulary of words: no fill-in-the-middle tokens
            raise insert_unsupported(self.source.name)
        self.requests.append(Request(None, prompt, config))
        return _answer(prompt, len(prompt.split()), config)

    def _embed(self, texts: list[str], kind: EmbeddingKind) -> list[list[float]]:
        self.load()
        return [[byte / 255 for byte in hashlib.sha256(f"{kind}:{t}".encode()).digest()[:8]]
                for t in texts]


def _answer(message: str, prompt_words: int, config: GenerationConfig) -> Iterator[Chunk]:
    slow = message.startswith("slow:")
    message = message.removeprefix("slow:").strip()
    thinks = config.think is True or message.startswith("think:")
    message = message.removeprefix("think:").strip()
    text = message[len("say:"):].strip() if message.startswith("say:") else f"echo: {message}"
    produced = 0
    if thinks:
        produced += 1
        yield Chunk(thinking="I think.")
    if config.forced_call:
        try:
            arguments = json.loads(text)
        except ValueError:
            arguments = {}
        call = ToolCall(config.forced_tools[0].name,
                        arguments if isinstance(arguments, dict) else {}, id="call_scripted")
        yield Chunk(tool_calls=[call])
        produced += 1
        finish = "stop"
    else:
        words = text.split(" ")
        limit = config.max_tokens or len(words)
        for index, word in enumerate(words[:limit]):
            if slow:
                time.sleep(SLOW_SECONDS)
            yield Chunk(text=word if index == 0 else f" {word}")
        produced += min(limit, len(words))
        finish = "length" if limit < len(words) else "stop"
    yield Chunk(finish_reason=finish,
                usage=Usage(prompt_tokens=prompt_words, completion_tokens=produced))
