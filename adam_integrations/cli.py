"""The ``adam`` command line: ``adam demo``, ``run``, ``show``, ``embed``, ``serve``,
``pull``, ``list``/``ls``, ``ps``, ``stop``, ``cp``, ``rm``, ``create``, ``hardware``,
``recommend``, ``share``, ``models``, and the tools ``convert``, ``quantize``,
``imatrix``, ``eval``.

Modelled on ``ollama``: ``adam run MODEL "prompt"`` streams an answer, ``adam run MODEL``
alone opens a chat (``/bye`` leaves), ``adam run "a prompt"`` asks the default model; bare
names from Ollama's store resolve; a misspelt command, flag or model name gets "did you
mean". Errors print one line saying what to do and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from adam_integrations.core import __version__
from adam_integrations.core.errors import AdamError, InvalidRequestError
from adam_integrations.core.types import THINKING_LEVELS, ChatMessage, Usage, check_prompt
from adam_integrations.manager import ModelManager
from adam_integrations.server.settings import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PROMPT_CHARS,
    DEFAULT_MAX_UPLOAD,
    DEFAULT_MIN_FREE,
    DEFAULT_REQUEST_TIMEOUT,
    ServerSettings,
    api_keys_from,
    max_queue_from,
)

BACKEND_HELP = ("auto (default: llama.cpp for a GGUF on a machine without a GPU, else "
                "transformers), huggingface, llamacpp, ollama (a model on an Ollama "
                "server), or openai, vllm, sglang, llamacpp-server (a model on a serving "
                "engine: name it as vllm:<model>@<url>)")

DEMO_QUESTION = "What is the capital of France? Answer in one sentence."
DEMO_TEXTS = ("A cat sits on the mat.", "A kitten is resting on a rug.")


def _think_level(value: str) -> str:
    """``--think=LEVEL``: one of the reasoning levels a request may name."""
    if value not in THINKING_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a level; use {', '.join(THINKING_LEVELS)} (or --think alone)")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for a misspelt flag or command, in the usage of the
    subcommand it was given to (``adam run --max_tokens 5``: ``--max-tokens``)."""

    def unknown(self, extras: list[str]) -> None:
        from adam_integrations.core.registry import did_you_mean

        flags = {flag for action in self._actions for flag in action.option_strings}
        named = [extra.split("=")[0] for extra in extras if extra.startswith("-")]
        hint = did_you_mean(named, flags) if named else ""
        self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")

    def error(self, message: str) -> Any:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            from adam_integrations.core.registry import did_you_mean

            choices = set(re.findall(r"'?([\w.-]+)'?", choice.group(2)))
            message += did_you_mean([choice.group(1)], choices)
        return super().error(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``adam`` console script."""
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        getattr(args, "command_parser", parser).unknown(extras)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except AdamError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `adam recommend | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="adam", description="Local language models for LangChain and LlamaIndex.",
        epilog="Installed with `make install` the command is .venv/bin/adam (or `adam` "
               "after `source .venv/bin/activate`).")
    parser.add_argument("--version", action="version", version=f"adam {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    demo = commands.add_parser("demo", help="stream an answer and compare two embeddings")
    _model_options(demo)
    demo.add_argument("--question", default=DEMO_QUESTION)
    demo.add_argument("--embedding-model", default=None, help="embedding model reference")
    demo.add_argument("--verbose", action="store_true",
                      help="say why this model and backend were picked")
    demo.set_defaults(handler=_demo)

    run = commands.add_parser("run", help="answer a prompt, or chat when no prompt is given")
    run.add_argument("model", nargs="?", default=None,
                     help="model reference (default: auto; `adam run \"a prompt\"` asks the "
                          "default model: a reference has no spaces)")
    run.add_argument("prompt", nargs="*", help="the prompt; omit it for an interactive chat")
    _generation_options(run)
    run.add_argument("--system", default=None, help="system prompt")
    run.add_argument("--backend", default="auto", help=BACKEND_HELP)
    run.add_argument("--verbose", action="store_true",
                     help="print token counts and speed, and why this model was picked")
    run.add_argument("--threads", type=int, default=None, metavar="N",
                     help="CPU threads llama.cpp decodes with (default: the usable cores)")
    run.set_defaults(handler=_run)

    show = commands.add_parser("show", help="show what a model is and where it lives")
    show.add_argument("model", nargs="?", default=None)
    show.add_argument("--embedding", action="store_true", help="default to the embedder")
    show.add_argument("--backend", default="auto", help=BACKEND_HELP)
    show.set_defaults(handler=_show)

    serve = commands.add_parser(
        "serve", help="serve every model over the Ollama API (and OpenAI's /v1)")
    serve.add_argument("--host", default=None,
                       help="address to bind (default 127.0.0.1, or OLLAMA_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (default 11434)")
    serve.add_argument("--max-body-mb", type=float, default=32.0,
                       help="largest request body accepted, in MiB (default 32)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--allowed-hosts", action="append", default=[], metavar="HOST",
                       help="more Host names to answer (repeatable or comma-separated); "
                            "on a non-loopback address, naming any turns the Host check on")
    serve.add_argument("--origins", action="append", default=[], metavar="ORIGIN",
                       help="more web origins allowed to call the API, besides Ollama's "
                            "defaults and OLLAMA_ORIGINS (repeatable or comma-separated; "
                            "'*' as a wildcard)")
    serve.add_argument("--api-key", action="append", default=[], metavar="KEY",
                       help="require 'Authorization: Bearer KEY' on every route but / "
                            "(repeatable; also ADAM_API_KEY, comma-separated)")
    serve.add_argument("--api-key-file", default=None, metavar="FILE",
                       help="more API keys, one per line ('#' starts a comment)")
    serve.add_argument("--model", action="append", default=[], metavar="NAME=REFERENCE",
                       help="serve REFERENCE under NAME (repeatable), e.g. qwen3-32b=vllm:"
                            "Qwen/Qwen3-32B@http://gpu-box:8000/v1: the way to serve a "
                            "model that runs on another server")
    serve.add_argument("--models-dir", action="append", default=[], metavar="DIR",
                       help="let requests name model files and folders under DIR by path "
                            "(repeatable; without it no path is served)")
    serve.add_argument("--max-queue", type=int, default=None, metavar="N",
                       help="requests for models at once, running and waiting; more get "
                            "503 (default OLLAMA_MAX_QUEUE, else 512)")
    serve.add_argument("--max-prompt-chars", type=int, default=DEFAULT_MAX_PROMPT_CHARS,
                       metavar="N", help="characters of prompt text one request may send "
                                         f"(default {DEFAULT_MAX_PROMPT_CHARS:,})")
    serve.add_argument("--max-tokens", type=int, default=None, metavar="N",
                       help="the most tokens one request may generate (default: as asked)")
    serve.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT,
                       metavar="SECONDS", help="seconds a request may spend generating or "
                       f"embedding; 0 for no limit (default {DEFAULT_REQUEST_TIMEOUT:g})")
    serve.add_argument("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT,
                       metavar="SECONDS", help="seconds a client may take to send a "
                       f"request's headers (default {DEFAULT_HEADER_TIMEOUT:g})")
    serve.add_argument("--body-timeout", type=float, default=DEFAULT_BODY_TIMEOUT,
                       metavar="SECONDS", help="seconds a client may pause while sending "
                       f"a request body (default {DEFAULT_BODY_TIMEOUT:g})")
    serve.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                       metavar="N", help="connections at once; past it the one waiting "
                       "longest for a request is closed (default "
                       f"{DEFAULT_MAX_CONNECTIONS}, fewer if the file limit is lower)")
    serve.add_argument("--max-upload-gb", type=float,
                       default=DEFAULT_MAX_UPLOAD / 1024**3, metavar="GIB",
                       help="the largest model file /api/blobs takes, in GiB (default "
                            f"{DEFAULT_MAX_UPLOAD / 1024**3:g}: the largest model of the "
                            "catalog at 16 bits)")
    serve.add_argument("--min-free-gb", type=float, default=DEFAULT_MIN_FREE / 1024**3,
                       metavar="GIB", help="free space an upload must leave on the model "
                       f"store's disk, in GiB (default {DEFAULT_MIN_FREE / 1024**3:g})")
    serve.add_argument("--parallel", type=int, default=None, metavar="N",
                       help="requests decoded together on each model (llama.cpp slots, "
                            "transformers batches); more wait their turn (default "
                            "OLLAMA_NUM_PARALLEL, else 4, fewer when RAM is short)")
    serve.add_argument("--threads", type=int, default=None, metavar="N",
                       help="CPU threads llama.cpp decodes with (default: the cores this "
                            "process can use; fewer can be much faster on a busy CPU)")
    serve.add_argument("--backend", default="auto", help=f"the backend for every model: "
                       f"{BACKEND_HELP}")
    serve.set_defaults(handler=_serve)

    hardware = commands.add_parser("hardware", help="what this machine has for models")
    hardware.set_defaults(handler=_hardware)

    recommend = commands.add_parser(
        "recommend", help="rank the Qwen3 models for this machine, with their memory fit")
    recommend.add_argument("--backend", default=None,
                           help="llamacpp, huggingface or ollama (default: this machine's)")
    recommend.add_argument("--domain", default=None, help="general, code, docker, ...")
    recommend.add_argument("--context", type=int, default=8192, help="context tokens wanted")
    recommend.add_argument("--all", action="store_true", help="every option, not the top 12")
    recommend.add_argument("--min-speed", type=float, default=None,
                           help="tokens/s the pick must reach (estimated; default 10)")
    recommend.add_argument("--hardware", default=None, metavar="PROFILE.json",
                           help="plan for the machine this JSON profile describes instead "
                                "of this one (see HardwareProfile.from_file)")
    recommend.add_argument("--engine", default=None, choices=["vllm", "sglang", "llama-server"],
                           help="plan a deployment on a serving engine instead (with --gpus)")
    recommend.add_argument("--gpus", default=None, metavar="NxMEM",
                           help="GPUs per node x memory each, e.g. 8x80GB (with --engine)")
    recommend.add_argument("--nodes", type=int, default=1, help="nodes (with --engine)")
    recommend.add_argument("--concurrency", type=int, default=1,
                           help="sequences to serve at once (with --engine)")
    recommend.set_defaults(handler=_recommend)

    pull = commands.add_parser("pull", help="download a model into the local cache")
    pull.add_argument("model", help="a model reference, e.g. hf:Qwen/Qwen3-8B-GGUF:Q4_K_M")
    pull.set_defaults(handler=_pull)

    share = commands.add_parser(
        "share", help="put a GGUF from the HF cache or a package into Ollama's store "
                      "(a hardlink, no second copy)")
    share.add_argument("model", help="a GGUF reference: hf:org/repo:Q4_K_M, a path, smollm2")
    share.add_argument("--to", default="ollama", choices=["ollama"])
    share.add_argument("--name", default=None, help="the Ollama name (default: derived)")
    share.add_argument("--copy", action="store_true",
                       help="copy when no link is possible (uses the disk twice)")
    share.set_defaults(handler=_share)

    create = commands.add_parser(
        "create", help="create a model in Ollama's store from a Modelfile (FROM, SYSTEM, "
                       "TEMPLATE, PARAMETER, MESSAGE, LICENSE), as ollama create does")
    create.add_argument("model", help="the name to create, e.g. my-assistant")
    create.add_argument("-f", "--file", default="Modelfile", help="the Modelfile "
                        "(default: ./Modelfile)")
    create.add_argument("-q", "--quantize", default=None,
                        help="quantize the FROM model (F16/BF16/F32) to this type, e.g. "
                             "q4_K_M, as ollama create -q does")
    create.add_argument("--overwrite", action="store_true",
                        help="replace a model of that name that adam did not make (one "
                             "from ollama pull or ollama create); adam's own are replaced "
                             "without it")
    create.set_defaults(handler=_create)

    conversion = commands.add_parser(
        "convert", help="write a transformers checkpoint (safetensors) as a GGUF, for "
                        "llama.cpp and Ollama; or a GGUF (smollm2 too) dequantized into an "
                        "f16/bf16/f32 GGUF or a transformers checkpoint (--to transformers)")
    conversion.add_argument("model", help="a checkpoint folder, a downloaded hf:org/repo, "
                                          "a catalog name, or a GGUF (a path, an Ollama "
                                          "name, the embedded smollm2)")
    conversion.add_argument("--type", default="auto",
                            choices=["auto", "f16", "bf16", "q8_0", "f32"],
                            help="the type written (default auto: a checkpoint's 16-bit "
                                 "type, f16 for f32 and for a GGUF); adam quantize makes "
                                 "smaller ones")
    conversion.add_argument("--to", default="gguf", choices=["gguf", "transformers"],
                            help="what a GGUF becomes (default gguf; transformers: a "
                                 "checkpoint folder, for fine-tuning)")
    _add_destination(conversion)
    conversion.set_defaults(handler=_convert)

    quantize = commands.add_parser(
        "quantize", help="quantize a GGUF with llama.cpp's quantizer (Q8_0, Q6_K, Q5_K_M, "
                         "Q4_K_M, ...) into a file or Ollama's store")
    quantize.add_argument("model", help="an F16/BF16/F32 GGUF: a path, an Ollama name, "
                                        "hf:org/repo:F16")
    quantize.add_argument("type", help="the quantization, e.g. Q4_K_M")
    _add_destination(quantize)
    quantize.add_argument("--allow-requantize", action="store_true",
                          help="quantize a file that is already quantized")
    quantize.add_argument("--threads", type=int, default=None,
                          help="threads for the quantizer (default: every core)")
    quantize.add_argument("--imatrix", default=None,
                          help="an importance matrix (adam imatrix, or llama-imatrix's "
                               "GGUF); the IQ1/IQ2 types need one")
    quantize.set_defaults(handler=_quantize)

    importance = commands.add_parser(
        "imatrix", help="an importance matrix of a model over a text, for adam quantize "
                        "--imatrix (llama-imatrix's file format)")
    importance.add_argument("model", help="a transformers checkpoint or an unquantized GGUF")
    importance.add_argument("--text", required=True, help="a text file like the model's "
                                                         "use (several thousand tokens)")
    importance.add_argument("-o", "--output", default=None,
                            help="the file to write (default: ./<model>-imatrix.gguf)")
    importance.add_argument("--context", type=int, default=512,
                            help="tokens per chunk (default 512, as llama-imatrix)")
    importance.add_argument("--chunks", type=int, default=None,
                            help="read at most this many chunks")
    importance.set_defaults(handler=_imatrix)

    evaluation = commands.add_parser(
        "eval", help="perplexity over a text, divergence from a reference and speed of "
                     "GGUF models (llama.cpp), as one table")
    evaluation.add_argument("models", nargs="+", help="GGUFs: paths, Ollama names, hf: GGUFs")
    evaluation.add_argument("--text", required=True, help="a text file to score (several "
                                                         "thousand tokens at least)")
    evaluation.add_argument("--reference", default=None,
                            help="the unquantized model, for KL divergence and top-1 "
                                 "agreement")
    evaluation.add_argument("--context", type=int, default=512,
                            help="tokens per chunk (default 512, as llama-perplexity)")
    evaluation.add_argument("--chunks", type=int, default=None,
                            help="read at most this many chunks")
    evaluation.add_argument("--backend", default="llamacpp",
                            choices=["llamacpp", "huggingface"],
                            help="run the models on llama.cpp (GGUF) or transformers")
    evaluation.add_argument("--reference-backend", default=None,
                            choices=["llamacpp", "huggingface"],
                            help="run the reference there instead (e.g. a converted GGUF "
                                 "against its transformers checkpoint)")
    evaluation.add_argument("--json", action="store_true", help="print JSON instead")
    evaluation.set_defaults(handler=_eval)

    listing = commands.add_parser("list", aliases=["ls"],
                                  help="models you can run by name, as `ollama list`")
    listing.set_defaults(handler=_list)
    running = commands.add_parser("ps", help="models a running adam serve (or Ollama) holds "
                                             "in memory, as `ollama ps`")
    running.set_defaults(handler=_ps)
    stop = commands.add_parser("stop", help="unload a model from a running adam serve (or "
                                            "Ollama), as `ollama stop`")
    stop.add_argument("model")
    stop.set_defaults(handler=_stop)
    remove = commands.add_parser("rm", help="remove a model adam create made, or a name "
                                            "adam cp made (model files are never deleted)")
    remove.add_argument("model", nargs="+")
    remove.set_defaults(handler=_rm)
    copy = commands.add_parser("cp", help="another name for a model, as `ollama cp`")
    copy.add_argument("source")
    copy.add_argument("destination")
    copy.set_defaults(handler=_cp)

    models = commands.add_parser("models", help="every model on disk across all stores")
    models.add_argument("--dedupe", action="store_true",
                        help="report bytes stored twice across stores")
    models.add_argument("--link", action="store_true",
                        help="with --dedupe: replace the duplicates the stores own with "
                             "hardlinks (a file outside the stores is never replaced)")
    models.add_argument("--verify", action="store_true",
                        help="read every file again and check it against the digest it is "
                             "named after (slow for large models)")
    models.set_defaults(handler=_models)

    embed = commands.add_parser("embed", help="print the embeddings of texts as JSON")
    embed.add_argument("texts", nargs="+")
    embed.add_argument("--model", default=None, help="embedding model reference")
    embed.add_argument("--backend", default="auto", help=BACKEND_HELP)
    embed.set_defaults(handler=_embed)
    for command in commands.choices.values():  # unknown flags: in the command's own usage
        command.set_defaults(command_parser=command)
    return parser


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="chat model reference (default: auto)")
    parser.add_argument("--backend", default="auto", help=BACKEND_HELP)
    _generation_options(parser)


def _generation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--format", default=None,
                        help="'json', or a JSON schema (inline or @file.json)")
    thinking = parser.add_mutually_exclusive_group()
    thinking.add_argument("--think", dest="think", nargs="?", const=True, default=None,
                          type=_think_level, metavar="LEVEL",
                          help="let a thinking model reason first (shown on stderr); "
                               "--think=low|medium|high|xhigh for a model that takes levels")
    thinking.add_argument("--nothink", dest="think", action="store_false",
                          help="switch a thinking model's reasoning off")


def _hardware(args: argparse.Namespace) -> int:
    from adam_integrations.core.hardware import HardwareProfile

    print("\n".join(HardwareProfile.detect().describe()))
    return 0


def _recommend(args: argparse.Namespace) -> int:
    from adam_integrations.catalog.selection import MIN_SPEED, default_backend, recommend
    from adam_integrations.core.hardware import HardwareProfile

    if args.engine or args.gpus:
        return _plan(args)
    hardware = (HardwareProfile.from_file(args.hardware) if args.hardware
                else HardwareProfile.detect())
    backend = args.backend or default_backend(hardware)
    if backend not in ("llamacpp", "huggingface", "ollama"):
        raise InvalidRequestError(f"--backend {backend!r}: use llamacpp, huggingface or ollama")
    min_speed = MIN_SPEED if args.min_speed is None else args.min_speed
    result = recommend(hardware, backend=backend, domain=args.domain, context=args.context,
                       min_speed=min_speed)
    print(f"pick: {result.explanation}\n")
    # The pick first, then what fits and is fast enough (largest first), then what fits
    # but is slower (fastest first), then what is tight, then what does not fit.
    ranked = sorted((o for o in result.options if o is not result.choice), key=lambda o: (
        not o.fits, not o.fast_enough(min_speed), o.fit == "tight",
        -o.model.parameters if o.fast_enough(min_speed) else -(o.tokens_per_second or 0),
        -o.estimate.weights))
    if result.choice is not None:
        ranked.insert(0, result.choice)
    for option in ranked if args.all else ranked[:12]:
        mark = "*" if result.choice is option else " "
        print(f"{mark} {option.line()}")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from adam_integrations.catalog.deployment import plan_deployment

    if not (args.engine and args.gpus):
        raise InvalidRequestError("a deployment plan needs both --engine and --gpus, e.g. "
                                  "adam recommend --engine vllm --gpus 8x80GB")
    plans = plan_deployment(args.engine, args.gpus, nodes=args.nodes, context=args.context,
                            concurrency=args.concurrency)
    print(f"{args.engine} on {args.nodes} node(s) of {args.gpus}, {args.context:,}-token "
          f"context, {args.concurrency} at once:\n")
    for plan in plans:
        mark = "*" if plan.fits and plan.meets_concurrency else " " if plan.fits else "x"
        print(f"{mark} {plan.describe()}")
        if plan.command:
            print(f"    {plan.command}")
        for note in plan.notes if plan.fits else []:
            print(f"    note: {note}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from adam_integrations.catalog.defaults import resolve_model as resolve
    from adam_integrations.core.stores.hub import hub_gguf, hub_snapshot

    source = resolve(args.model)
    if source.kind != "hub":
        print(f"already on disk: {source.location}")
        return 0
    where = {"revision": None, "cache_dir": None, "allow_download": True}
    path = (hub_gguf(source.location, source.quantization, **where) if source.gguf_repo
            else hub_snapshot(source.location, **where))
    print(f"pulled {source.name}: {path}")
    return 0


def _share(args: argparse.Namespace) -> int:
    from adam_integrations.sharing.ollama_share import default_ollama_name, share_gguf

    source = _gguf_source(args.model)
    name = args.name or default_ollama_name(source)
    result = share_gguf(source.location, name, allow_copy=args.copy)
    how = {"hardlink": "as a hardlink (0 extra bytes)", "reflink": "as a reflink",
           "symlink": "as a symlink", "existing": "(the blob was already there)",
           "copy": f"as a COPY ({result.extra_bytes:,} bytes written)"}[result.link]
    print(f"shared {source.location} with Ollama as {result.name} {how}")
    if result.repaired:
        print(f"  repaired: {result.repaired}")
    print(f"  manifest {result.manifest}\n  blob     {result.blob}")
    return 0


def _gguf_source(reference: str) -> Any:
    from adam_integrations.catalog.defaults import resolve_model as resolve
    from adam_integrations.core.stores.hub import hub_gguf

    source = resolve(reference)
    if source.kind == "hub" and source.gguf_repo:
        path = hub_gguf(source.location, source.quantization, revision=None, cache_dir=None,
                        allow_download=False)
        source = resolve(str(path))
    if source.kind != "gguf":
        raise InvalidRequestError(
            f"{reference!r} is a {source.kind} model; Ollama imports GGUF files only. For "
            "Qwen3 use the official GGUF (e.g. hf:Qwen/Qwen3-8B-GGUF:Q4_K_M); Ollama "
            "cannot import Qwen3 safetensors")
    return source


def _create(args: argparse.Namespace) -> int:
    from adam_integrations.catalog.defaults import resolve_model as resolve
    from adam_integrations.core.stores.ollama_store import model_layers
    from adam_integrations.server.names import check_alias
    from adam_integrations.sharing.ollama_create import create_model
    from adam_integrations.wire.modelfile import parse_modelfile

    name = check_alias(args.model)
    modelfile = Path(args.file).expanduser()
    try:
        recipe = parse_modelfile(modelfile.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidRequestError(f"cannot read the Modelfile {str(modelfile)!r}: "
                                  f"{error.strerror}; pass it with -f") from None
    local = (modelfile.parent / recipe.base).expanduser()
    source = resolve(str(local) if local.suffix == ".gguf" and local.is_file() else
                     recipe.base)
    if source.kind != "gguf":
        raise InvalidRequestError(
            f"FROM {recipe.base}: a {source.kind} model; a model in Ollama's store is a GGUF "
            "(name a .gguf file or a GGUF model)")
    gguf = source.location
    if args.quantize:
        from adam_integrations.tools import quantize_into_store

        gguf = quantize_into_store(Path(gguf), args.quantize, report=print,
                                   progress=sys.stderr.isatty())
    create_model(name, gguf,
                 inherited=model_layers(source.ollama_name) if source.ollama_name else None,
                 system=recipe.system, template=recipe.template,
                 parameters=recipe.parameters, messages=recipe.messages or None,
                 license=recipe.licenses or None, overwrite=args.overwrite, report=print)
    print("success")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from adam_integrations.tools import convert

    done = convert(args.model, args.type, output=args.output, name=args.name, to=args.to,
                   progress=sys.stderr.isatty())
    print(f"{done.file_type}: {done.path} ({done.output_bytes / 1e6:,.1f} MB from "
          f"{done.source}, {done.seconds:.1f} s)"
          + (f"\n  Ollama model {done.ollama_name}" if done.ollama_name else ""))
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from adam_integrations.tools import quantize

    done = quantize(args.model, args.type, output=args.output, name=args.name,
                    allow_requantize=args.allow_requantize, threads=args.threads,
                    imatrix=args.imatrix, progress=sys.stderr.isatty())
    print(f"{done.quantization}: {done.path} ({done.output_bytes / 1e6:,.1f} MB from "
          f"{done.source_bytes / 1e6:,.1f} MB, {done.seconds:.1f} s)"
          + (f"\n  Ollama model {done.ollama_name}" if done.ollama_name else ""))
    return 0


def _add_destination(command: argparse.ArgumentParser) -> None:
    """A GGUF-writing command's -o FILE or --name NAME (Ollama's store), not both."""
    where = command.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", default=None,
                       help="the GGUF file to write (default: ./<model>-<type>.gguf)")
    where.add_argument("--name", default=None,
                       help="create this model in Ollama's store instead of a file")


def _text_file(name: str) -> str:
    try:
        return Path(name).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidRequestError(f"cannot read the text {name!r}: {error}") from None


def _imatrix(args: argparse.Namespace) -> int:
    from adam_integrations.tools import importance_matrix

    print(f"importance matrix of {args.model} over {args.text}: loading the model, then "
          "one chunk at a time", file=sys.stderr, flush=True)
    done = importance_matrix(args.model, _text_file(args.text), output=args.output,
                             context=args.context, chunks=args.chunks,
                             dataset=Path(args.text).name, progress=sys.stderr.isatty())
    print(f"{done.path}: {done.entries} matrices over {done.tokens} tokens "
          f"({done.chunks} chunks, {done.seconds:.1f} s); use it with adam quantize "
          f"--imatrix {done.path}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from adam_integrations.tools import evaluate

    text = _text_file(args.text)
    results = evaluate(args.models, text, reference=args.reference, context=args.context,
                       chunks=args.chunks, backend=args.backend,
                       reference_backend=args.reference_backend,
                       text_name=Path(args.text).name,
                       report=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
        return 0
    print(f"{'model':<36} {'type':<8} {'perplexity':>10} {'KL':>8} {'top-1':>6} "
          f"{'prompt tok/s':>12} {'gen tok/s':>9}")
    for r in results:
        kl = f"{r.kl_divergence:8.4f}" if r.kl_divergence is not None else f"{'':>8}"
        top1 = f"{r.top1_agreement:6.1%}" if r.top1_agreement is not None else f"{'':>6}"
        print(f"{r.model[:36]:<36} {r.quantization or '?':<8} {r.perplexity:10.4f} {kl} "
              f"{top1} {r.prefill_tokens_per_s:12.1f} {r.decode_tokens_per_s:9.1f}")
    print(f"({results[0].scored_tokens} tokens scored, chunks of {args.context})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from adam_integrations.server.models import ServedModels
    from adam_integrations.server.serving import stored_model

    rows = []
    for name, source in ServedModels().listed():
        try:
            stored = stored_model(name, source)
        except OSError:  # removed meanwhile
            continue
        rows.append((name, stored.digest[:12], _size(stored.size), _ago(stored.modified_at)))
    _table(("NAME", "ID", "SIZE", "MODIFIED"), rows)
    return 0


def _ps(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    with _server() as client:
        running = client.ps().models
    now = datetime.now(timezone.utc)
    _table(("NAME", "ID", "SIZE", "PROCESSOR", "UNTIL"), [
        (model.model or model.name or "", (model.digest or "")[:12], _size(model.size or 0),
         "100% GPU" if model.size_vram else "100% CPU",
         "forever" if model.expires_at is None or (model.expires_at - now).days > 365
         else _ago(model.expires_at, future=True))
        for model in running])
    return 0


def _stop(args: argparse.Namespace) -> int:
    with _server() as client:
        client.generate(model=args.model, prompt="", keep_alive=0)
    return 0


def _rm(args: argparse.Namespace) -> int:
    from adam_integrations.server.models import ServedModels

    models = ServedModels()
    for name in args.model:
        models.delete(name)
        print(f"deleted '{name}'")
    return 0


def _cp(args: argparse.Namespace) -> int:
    from adam_integrations.server.models import ServedModels

    ServedModels().copy(args.source, args.destination)
    print(f"copied '{args.source}' to '{args.destination}'")
    return 0


@contextlib.contextmanager
def _server() -> Iterator[Any]:
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


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}" if size < 10 * scale else \
                f"{size / scale:.0f} {unit}"
    return f"{size} B"


def _ago(when: Any, *, future: bool = False) -> str:
    """"3 minutes ago" / "4 minutes from now", as ollama writes times."""
    from datetime import datetime, timezone

    seconds = abs((datetime.now(timezone.utc) - when).total_seconds())
    for unit, scale in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= scale or unit == "second":
            count = int(seconds // scale)
            return (f"{count} {unit}{'s' if count != 1 else ''} "
                    f"{'from now' if future else 'ago'}")
    return ""


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("    ".join(str(cell).ljust(width) for cell, width in zip(row, widths,
                                                                     strict=True)).rstrip())


def _models(args: argparse.Namespace) -> int:
    from adam_integrations.sharing.index import build_index, dedupe

    index = build_index(verify=args.verify)
    for stored in index.files:
        details = " ".join(x for x in (stored.format, stored.architecture or "",
                                       stored.size_label or "", stored.quantization or "",
                                       f"ctx {stored.context_length}"
                                       if stored.context_length else "") if x)
        print(f"{stored.size / 1024**2:10.1f} MiB  {details:<36} "
              f"{', '.join(stored.names)}")
        where = (f"BROKEN: {stored.problem}" if stored.problem
                 else f"[runs on: {', '.join(stored.backends)}]")
        print(f"{'':16}{stored.path}  {where}")
    broken = sum(1 for stored in index.files if stored.problem)
    if args.verify:
        print(f"\nverified {len(index.files)} file(s): {broken} broken")
    if args.dedupe:
        twice = index.duplicate_bytes()
        print(f"\nstored twice: {twice:,} bytes in {len(index.duplicates())} group(s)")
        if args.link and twice:
            print(f"replaced duplicates with hardlinks: {dedupe(index):,} bytes freed")
    for note in index.notes:
        print(f"note: {note}")
    return 1 if args.verify and broken else 0


def _serve(args: argparse.Namespace) -> int:
    from adam_integrations.server import serve

    for flag, value in (("--max-queue", args.max_queue), ("--max-tokens", args.max_tokens),
                        ("--max-prompt-chars", args.max_prompt_chars),
                        ("--parallel", args.parallel), ("--threads", args.threads),
                        ("--max-connections", args.max_connections)):
        if value is not None and value < 1:
            raise InvalidRequestError(f"{flag} must be at least 1, got {value}")
    for flag, number in (("--header-timeout", args.header_timeout),
                         ("--body-timeout", args.body_timeout),
                         ("--max-upload-gb", args.max_upload_gb)):
        if not number > 0:
            raise InvalidRequestError(f"{flag} must be a positive number, got {number:g}")
    if not args.min_free_gb >= 0:
        raise InvalidRequestError(f"--min-free-gb must be 0 or more, got {args.min_free_gb:g}")
    if args.parallel is not None:  # read by every in-process backend the server creates
        os.environ["OLLAMA_NUM_PARALLEL"] = str(args.parallel)
    settings = ServerSettings(
        allowed_hosts=tuple(_listed(args.allowed_hosts)), origins=tuple(_listed(args.origins)),
        api_keys=api_keys_from(args.api_key, args.api_key_file),
        model_dirs=tuple(Path(d).expanduser() for d in args.models_dir),
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_queue=args.max_queue or max_queue_from(),
        max_prompt_chars=args.max_prompt_chars, max_tokens=args.max_tokens,
        request_timeout=args.request_timeout or None, header_timeout=args.header_timeout,
        body_timeout=args.body_timeout, max_connections=args.max_connections,
        max_upload_bytes=int(args.max_upload_gb * 1024**3),
        min_free_bytes=int(args.min_free_gb * 1024**3))
    named = {}
    for pair in args.model:
        name, equals, reference = pair.partition("=")
        if not equals or not name.strip() or not reference.strip():
            raise InvalidRequestError(f"--model {pair!r}: write NAME=REFERENCE, e.g. "
                                      "qwen3=vllm:Qwen/Qwen3-8B@http://gpu-box:8000/v1")
        named[name.strip()] = reference.strip()
    serve(args.host, args.port, settings=settings, log_level=args.log_level,
          model_type=args.backend, named=named,
          backend_options={"n_threads": args.threads} if args.threads else None)
    return 0


def _listed(values: list[str]) -> list[str]:
    """Repeatable and comma-separated values, flattened."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _wrapped(label: str, text: str, width: int = 88) -> str:
    """``text`` after ``label`` in lines of ``width`` (an explanation runs to hundreds of
    characters), continued under the text."""
    import textwrap

    return textwrap.fill(text, width=width, initial_indent=label,
                         subsequent_indent=" " * len(label), break_on_hyphens=False)


def _demo(args: argparse.Namespace) -> int:
    manager = ModelManager(model_type=args.backend, model=args.model,
                           embedding_model=args.embedding_model)
    print(_wrapped("Model: ", manager.explanation if args.verbose else
                   f"{manager.summary}; --verbose says why"))
    manager.load()
    print(f"\nQ: {args.question}\nA: ", end="", flush=True)
    messages = [ChatMessage("user", args.question)]
    usage = _stream_answer(manager, messages, args)
    info = manager.info
    precision = info.dtype or info.quantization or "?"
    print(f"\n[{info.name} on {info.backend}/{info.device} ({precision}): "
          f"{_usage_line(usage)}]")

    first, second = manager.batch_embed(list(DEMO_TEXTS))
    embedder = manager.embedder.info()
    print(f"\nEmbeddings ({embedder.name}, {embedder.embedding_dimension} dimensions):")
    print(f"  {DEMO_TEXTS[0]!r} vs {DEMO_TEXTS[1]!r}")
    print(f"  cosine similarity: {cosine(first, second):.4f}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.model is not None and any(c.isspace() for c in args.model.strip()):
        args.prompt, args.model = [args.model, *args.prompt], None  # adam run "a prompt"
    if args.prompt:  # an empty prompt is refused before any model loads
        check_prompt(" ".join(args.prompt))
    manager = ModelManager(model_type=args.backend, model=args.model,
                           **({"n_threads": args.threads} if args.threads else {}))
    history: list[ChatMessage] = [ChatMessage("system", args.system)] if args.system else []
    if args.prompt:
        history.append(ChatMessage("user", " ".join(args.prompt)))
        usage = _stream_answer(manager, history, args)
        print()
        if args.verbose:
            print(_usage_line(usage), file=sys.stderr)
        return 0
    print(f"{_wrapped('', manager.explanation if args.verbose else manager.summary)}\n"
          "Type a message; /bye to leave.", file=sys.stderr)
    while True:
        try:
            line = input(">>> ")
        except EOFError:
            return 0
        if line.strip() in ("/bye", "/exit", "/quit"):
            return 0
        if not line.strip():
            continue
        history.append(ChatMessage("user", line))
        parts: list[str] = []
        usage = _stream_answer(manager, history, args, collect=parts)
        history.append(ChatMessage("assistant", "".join(parts)))
        print("\n" if not args.verbose else f"\n{_usage_line(usage)}\n")


def _show(args: argparse.Namespace) -> int:
    manager = ModelManager(model_type=args.backend, model=None if args.embedding else args.model,
                           embedding_model=args.model if args.embedding else None)
    backend = manager.embedder if args.embedding else manager.backend
    info = backend.info()
    rows = {
        "name": info.name, "backend": info.backend, "family": info.family,
        "parameters": f"{info.parameter_count:,}" if info.parameter_count else None,
        "context window": info.context_window, "embedding dim": info.embedding_dimension,
        "capabilities": ", ".join(info.capabilities), "format": info.format,
        "device": info.device, "dtype": info.dtype, "path": info.path,
        "why": manager.embedding_explanation if args.embedding else manager.explanation,
    }
    for key, value in rows.items():
        if value is not None:
            print(f"  {key:<15} {value}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    manager = ModelManager(model_type=args.backend, embedding_model=args.model)
    json.dump(manager.batch_embed(args.texts), sys.stdout)
    print()
    return 0


def _stream_answer(
    manager: ModelManager, messages: list[ChatMessage], args: argparse.Namespace,
    collect: list[str] | None = None,
) -> Usage:
    usage = Usage()
    stream = manager.stream_chat(messages, max_tokens=args.max_tokens,
                                 temperature=args.temperature, think=args.think,
                                 response_format=_response_format(args.format))
    for chunk in stream:
        if chunk.thinking:
            print(chunk.thinking, end="", file=sys.stderr, flush=True)
        print(chunk.text, end="", flush=True)
        if collect is not None:
            collect.append(chunk.text)
        if chunk.usage is not None:
            usage = chunk.usage
    return usage


def _response_format(value: str | None) -> object:
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


def _usage_line(usage: Usage) -> str:
    return (f"{usage.prompt_tokens} prompt tokens, {usage.completion_tokens} generated, "
            f"{usage.tokens_per_second:.1f} tokens/s"
            + (f", {usage.reasoning_tokens} of them reasoning" if usage.reasoning_tokens else ""))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


if __name__ == "__main__":
    raise SystemExit(main())
