"""The ``adam`` parser: argparse with "did you mean", and every command's module."""

from __future__ import annotations

import argparse
import re
from typing import Any

from adam_integrations.cli import (
    convert,
    cp,
    create,
    demo,
    distill,
    embed,
    evaluate,
    hardware,
    imatrix,
    listing,
    merge,
    models,
    prune,
    ps,
    pull,
    quantize,
    recommend,
    rm,
    run,
    serve,
    share,
    show,
    stop,
    tune,
)
from adam_integrations.core import __version__

COMMANDS = (demo, run, show, serve, hardware, recommend, pull, share, create, convert,
            quantize, imatrix, evaluate, tune, merge, distill, prune,
            listing, ps, stop, rm, cp, models, embed)
"""The command modules, in the order ``adam --help`` lists them; each has ``add(commands)``
(its parser, with ``handler`` set to its ``run``)."""


class Parser(argparse.ArgumentParser):
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


def build_parser() -> Parser:
    """The ``adam`` parser with every command."""
    parser = Parser(
        prog="adam", description="Local language models for LangChain and LlamaIndex.",
        epilog="Installed with `make install` the command is .venv/bin/adam (or `adam` "
               "after `source .venv/bin/activate`).")
    parser.add_argument("--version", action="version", version=f"adam {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMANDS:
        module.add(commands)
    for command in commands.choices.values():  # unknown flags: in the command's own usage
        command.set_defaults(command_parser=command)
    return parser
