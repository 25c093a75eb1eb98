"""``adam serve``: every model over the Ollama API, OpenAI's ``/v1`` and Anthropic's
``/v1/messages``. The flags of the server's limits are made from ``ServerSettings``
(each field's ``Flag``: name, help, unit and range), which checks the values."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from adam_integrations.cli.common import BACKEND_HELP, listed
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.server.settings import ServerSettings, api_keys_from, max_queue_from


def add(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="serve every model over the Ollama API (and OpenAI's /v1)")
    serve.add_argument("--host", default=None,
                       help="address to bind (default 127.0.0.1, or OLLAMA_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (default 11434)")
    serve.add_argument("--log-level", default="info")
    defaults = {f.name: f.default for f in fields(ServerSettings)}
    for name, flag in ServerSettings.flags().items():
        if flag.repeatable:
            serve.add_argument(flag.name, dest=name, action="append", default=[],
                               metavar=flag.metavar, help=flag.help)
            continue
        default = defaults[name]
        shown = "" if default is None else _number(default / flag.scale)
        text = (flag.help.format(default=shown) if "{default}" in flag.help else
                flag.help if default is None or "(default" in flag.help else
                f"{flag.help} (default {shown})")
        serve.add_argument(flag.name, dest=name, type=flag.type, default=None,
                           metavar=flag.metavar, help=text)
    serve.add_argument("--api-key-file", default=None, metavar="FILE",
                       help="more API keys, one per line ('#' starts a comment)")
    serve.add_argument("--model", action="append", default=[], metavar="NAME=REFERENCE",
                       help="serve REFERENCE under NAME (repeatable), e.g. qwen3-32b=vllm:"
                            "Qwen/Qwen3-32B@http://gpu-box:8000/v1: the way to serve a "
                            "model that runs on another server")
    serve.add_argument("--lora", action="append", default=[], metavar="NAME=PATH",
                       help="serve a LoRA adapter (a PEFT folder from adam tune, or a GGUF "
                            "adapter) as the model NAME (repeatable), on the one --model or "
                            "the base it was trained on; requests may also pick adapters "
                            "with llama-server's per-request lora field")
    serve.add_argument("--backend", default="auto", help=f"the backend for every model: "
                       f"{BACKEND_HELP}")
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.server import serve

    serve(args.host, args.port, settings=settings_of(args), log_level=args.log_level,
          model_type=args.backend, named=named_models(args.model),
          loras=named_models(args.lora, "--lora"))
    return 0


def settings_of(args: argparse.Namespace) -> ServerSettings:
    """The settings the flags give (a flag left out: the environment's value where Ollama
    reads one, else the default); ``ServerSettings`` checks their ranges."""
    values: dict[str, Any] = {}
    for name, flag in ServerSettings.flags().items():
        given = getattr(args, name)
        if flag.repeatable:
            values[name] = tuple(flag.type(item) for item in listed(given))
        elif given is not None:
            values[name] = (None if flag.zero_is_none and given == 0 else
                            given if flag.scale == 1 else int(given * flag.scale))
    values["model_dirs"] = tuple(folder.expanduser() for folder in values["model_dirs"])
    values["api_keys"] = api_keys_from(args.api_keys, args.api_key_file)
    values.setdefault("max_queue", max_queue_from())
    return ServerSettings(**values)


def named_models(pairs: list[str], flag: str = "--model") -> dict[str, str]:
    """``--model NAME=REFERENCE`` (or ``--lora NAME=PATH``) values as served names to
    references."""
    named = {}
    for pair in pairs:
        name, equals, reference = pair.partition("=")
        if not equals or not name.strip() or not reference.strip():
            example = ("pirate=./pirate-adapter" if flag == "--lora" else
                       "qwen3=vllm:Qwen/Qwen3-8B@http://gpu-box:8000/v1")
            raise InvalidRequestError(f"{flag} {pair!r}: write NAME="
                                      f"{'PATH' if flag == '--lora' else 'REFERENCE'}, e.g. "
                                      f"{example}")
        named[name.strip()] = reference.strip()
    return named


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"
