"""What several ``adam`` commands share: the model and generation flags, the answer
stream, tables and times as ``ollama`` prints them, and a client for a running server."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import textwrap
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from adam_integrations.core.errors import AdamError, InvalidRequestError
from adam_integrations.core.types import THINKING_LEVELS, ChatMessage, Usage
from adam_integrations.manager import ModelManager

BACKEND_HELP = ("auto (default: llama.cpp for a GGUF on a machine without a GPU, else "
                "transformers), huggingface, llamacpp, ollama (a model on an Ollama "
                "server), or openai, vllm, sglang, llamacpp-server (a model on a serving "
                "engine: name it as vllm:<model>@<url>)")


# -- flags -------------------------------------------------------------------------------
def model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend`` and the generation flags."""
    parser.add_argument("--model", default=None, help="chat model reference (default: auto)")
    parser.add_argument("--backend", default="auto", help=BACKEND_HELP)
    generation_options(parser)


def generation_options(parser: argparse.ArgumentParser) -> None:
    """``--max-tokens``, ``--temperature``, ``--format``, ``--think`` / ``--nothink``."""
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--format", default=None,
                        help="'json', or a JSON schema (inline or @file.json)")
    thinking = parser.add_mutually_exclusive_group()
    thinking.add_argument("--think", dest="think", nargs="?", const=True, default=None,
                          type=think_level, metavar="LEVEL",
                          help="let a thinking model reason first (shown on stderr); "
                               "--think=low|medium|high|xhigh for a model that takes levels")
    thinking.add_argument("--nothink", dest="think", action="store_false",
                          help="switch a thinking model's reasoning off")


def think_level(value: str) -> str:
    """``--think=LEVEL``: one of the reasoning levels a request may name."""
    if value not in THINKING_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a level; use {', '.join(THINKING_LEVELS)} (or --think alone)")
    return value


def add_destination(command: argparse.ArgumentParser, *,
                    output: str = "the GGUF file to write (default: ./<model>-<type>.gguf)",
                    name: str = "create this model in Ollama's store instead of a file",
                    either: bool = True) -> None:
    """A model-writing command's -o FILE and --name NAME (Ollama's store): one of them
    (``either``), or both."""
    where = command.add_mutually_exclusive_group() if either else command
    where.add_argument("-o", "--output", default=None, help=output)
    where.add_argument("--name", default=None, help=name)


def listed(values: Sequence[str]) -> list[str]:
    """Repeatable and comma-separated values, flattened."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def text_file(name: str) -> str:
    """The text of the file ``name`` (an error naming it when it cannot be read)."""
    try:
        return Path(name).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidRequestError(f"cannot read the text {name!r}: {error}") from None


# -- answers -----------------------------------------------------------------------------
def stream_answer(manager: ModelManager, messages: list[ChatMessage],
                  args: argparse.Namespace, collect: list[str] | None = None) -> Usage:
    """Print the answer as it comes (reasoning on stderr); its usage."""
    usage = Usage()
    stream = manager.stream_chat(messages, max_tokens=args.max_tokens,
                                 temperature=args.temperature, think=args.think,
                                 response_format=response_format(args.format))
    for chunk in stream:
        if chunk.thinking:
            print(chunk.thinking, end="", file=sys.stderr, flush=True)
        print(chunk.text, end="", flush=True)
        if collect is not None:
            collect.append(chunk.text)
        if chunk.usage is not None:
            usage = chunk.usage
    return usage


def response_format(value: str | None) -> object:
    """``--format``: None, "json", an inline JSON schema, or ``@path`` to a schema file."""
    if value is None or value == "json":
        return value
    text = value
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            raise InvalidRequestError(
                f"cannot read the schema file {value[1:]!r}: {error}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise InvalidRequestError(
            f"--format must be 'json', a JSON schema or @file.json; this is not JSON: {error}"
        ) from None


def usage_line(usage: Usage) -> str:
    return (f"{usage.prompt_tokens} prompt tokens, {usage.completion_tokens} generated, "
            f"{usage.tokens_per_second:.1f} tokens/s"
            + (f", {usage.reasoning_tokens} of them reasoning" if usage.reasoning_tokens else ""))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


# -- printing ----------------------------------------------------------------------------
def wrapped(label: str, text: str, width: int = 88) -> str:
    """``text`` after ``label`` in lines of ``width`` (an explanation runs to hundreds of
    characters), continued under the text."""
    return textwrap.fill(text, width=width, initial_indent=label,
                         subsequent_indent=" " * len(label), break_on_hyphens=False)


def size(size: int) -> str:
    """Bytes as ``ollama list`` writes them (``1.2 GB``)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}" if size < 10 * scale else \
                f"{size / scale:.0f} {unit}"
    return f"{size} B"


def ago(when: datetime, *, future: bool = False) -> str:
    """"3 minutes ago" / "4 minutes from now", as ollama writes times."""
    seconds = abs((datetime.now(timezone.utc) - when).total_seconds())
    for unit, scale in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= scale or unit == "second":
            count = int(seconds // scale)
            return (f"{count} {unit}{'s' if count != 1 else ''} "
                    f"{'from now' if future else 'ago'}")
    return ""


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Columns as ``ollama list`` prints them."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("    ".join(str(cell).ljust(width) for cell, width in zip(row, widths,
                                                                     strict=True)).rstrip())


@contextlib.contextmanager
def running_server() -> Iterator[Any]:
    """An ``ollama`` client for the server ``OLLAMA_HOST`` names (adam serve's default
    address otherwise): what `ps` and `stop` ask, as ollama's do. No server there, or
    its refusal, is an error saying so."""
    import httpx
    import ollama

    from adam_integrations.server.app import host_and_port

    host, port = host_and_port(None, None)
    url = f"http://{host}:{port}"
    try:
        yield ollama.Client(host=url)
    except (ConnectionError, httpx.HTTPError) as error:
        raise AdamError(f"no server answers at {url}: start one with `adam serve`, or point "
                        "OLLAMA_HOST at the one you run (models live in the server that "
                        "loaded them)") from error
    except ollama.ResponseError as error:
        raise AdamError(f"the server at {url} answered: {error.error}") from error
