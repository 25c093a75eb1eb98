"""``adam create``: a model in Ollama's store from a Modelfile, as ``ollama create``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from adam_integrations.core.errors import InvalidRequestError


def add(commands: Any) -> None:
    create = commands.add_parser(
        "create", help="create a model in Ollama's store from a Modelfile (FROM, ADAPTER, "
                       "SYSTEM, TEMPLATE, PARAMETER, MESSAGE, LICENSE), as ollama create "
                       "does")
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
    create.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from adam_integrations.catalog.defaults import resolve_model
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
    source = resolve_model(str(local) if local.suffix == ".gguf" and local.is_file() else
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
                 license=recipe.licenses or None,
                 adapters=[(modelfile.parent / a).expanduser() for a in recipe.adapters],
                 overwrite=args.overwrite, report=print)
    print("success")
    return 0
