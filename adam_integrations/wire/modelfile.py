"""Ollama's Modelfile, both ways: ``parse_modelfile`` reads the directives people write
(what ``adam create -f Modelfile`` runs), ``render_modelfile`` writes one (``/api/show``'s
``modelfile``).

Directives (case-insensitive): ``FROM`` a model name or a GGUF path (relative to the
Modelfile), ``SYSTEM``, ``TEMPLATE``, ``PARAMETER name value`` (repeated ``stop`` lines
make a list; numbers are read as numbers), ``MESSAGE role content``, ``LICENSE`` (may
repeat), ``ADAPTER`` a LoRA adapter (a GGUF adapter or a PEFT folder, relative to the
Modelfile; may repeat). A value may be quoted, and ``\"\"\"`` quotes span lines. ``#``
starts a comment line. Directives Ollama does not have are refused with their line
number.

Example:
    >>> recipe = parse_modelfile('FROM smollm2:135m\\nSYSTEM \"\"\"You are terse.\"\"\"\\n'
    ...                          'PARAMETER temperature 0.2\\nPARAMETER stop <|im_end|>')
    >>> recipe.base, recipe.system, recipe.parameters
    ('smollm2:135m', 'You are terse.', {'temperature': 0.2, 'stop': ['<|im_end|>']})
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adam_integrations.core.errors import InvalidRequestError

DIRECTIVES = ("FROM", "ADAPTER", "SYSTEM", "TEMPLATE", "PARAMETER", "MESSAGE", "LICENSE")
_LINE = re.compile(r"([A-Za-z]+)(?:\s+|$)(.*)", re.DOTALL)


@dataclass
class ModelRecipe:
    """A Modelfile's directives."""

    base: str = ""
    system: str | None = None
    template: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)


def parse_modelfile(text: str) -> ModelRecipe:
    """The directives of a Modelfile; InvalidRequestError naming the line otherwise."""
    recipe = ModelRecipe()
    for number, directive, value in _directives(text):
        if directive == "FROM":
            recipe.base = value
        elif directive == "SYSTEM":
            recipe.system = value
        elif directive == "TEMPLATE":
            recipe.template = value
        elif directive == "LICENSE":
            recipe.licenses.append(value)
        elif directive == "ADAPTER":
            if not value:
                raise _error(number, "ADAPTER needs a path: a GGUF LoRA adapter or a PEFT "
                                     "adapter folder")
            recipe.adapters.append(value)
        elif directive == "PARAMETER":
            name, _, raw = value.partition(" ")
            if not name or not raw.strip():
                raise _error(number, "PARAMETER needs a name and a value, e.g. "
                                     "PARAMETER temperature 0.7")
            parsed = _value(_unquoted(raw.strip()))
            if name == "stop":
                recipe.parameters.setdefault("stop", []).append(str(parsed))
            else:
                recipe.parameters[name] = parsed
        elif directive == "MESSAGE":
            role, _, content = value.partition(" ")
            if role not in ("system", "user", "assistant"):
                raise _error(number, f"MESSAGE takes a role of system, user or assistant, "
                                     f"got {role!r}")
            recipe.messages.append({"role": role, "content": _unquoted(content.strip())})
    if not recipe.base:
        raise InvalidRequestError("the Modelfile has no FROM line: name the model or GGUF "
                                  "file to start from, e.g. FROM qwen3:8b")
    return recipe


def render_modelfile(base: str, *, system: str | None = None, template: str | None = None,
                     parameters: Mapping[str, Any] | None = None,
                     messages: Sequence[Mapping[str, Any]] = (),
                     license: str | None = None, adapters: Sequence[str] = ()) -> str:
    """A Modelfile that ``parse_modelfile`` (and Ollama) read back as the same model."""
    lines = [f"FROM {base}", *(f"ADAPTER {adapter}" for adapter in adapters)]
    if template:
        lines.append(f'TEMPLATE """{template}"""')
    if system:
        lines.append(f'SYSTEM """{system}"""')
    for name, value in (parameters or {}).items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {name} {_shown(item)}")
    for message in messages:
        lines.append(f'MESSAGE {message.get("role")} """{message.get("content", "")}"""')
    if license:
        lines.append(f'LICENSE """{license}"""')
    return "\n".join(lines) + "\n"


def _directives(text: str) -> list[tuple[int, str, str]]:
    """(line number, directive, value) for each directive, quotes spanning lines joined."""
    found: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        directive = match.group(1).upper() if match else ""
        if directive not in DIRECTIVES:
            raise _error(number, f"{line.split()[0]!r} is not a Modelfile directive; use "
                                 f"{', '.join(DIRECTIVES)}")
        value = match.group(2).strip() if match else ""
        while value.count('"""') == 1 and index < len(lines):  # a quote spanning lines
            value += "\n" + lines[index]
            index += 1
        if value.count('"""') == 1:
            raise _error(number, 'a """ quote is not closed')
        found.append((number, directive, value if directive in ("PARAMETER", "MESSAGE")
                      else _unquoted(value)))
    return found


def _unquoted(value: str) -> str:
    if len(value) >= 6 and value.startswith('"""') and value.endswith('"""'):
        return value[3:-3].strip("\n")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _value(raw: str) -> Any:
    """A PARAMETER value: a number or boolean when it reads as one, else the text."""
    try:
        return json.loads(raw) if re.fullmatch(r"-?\d+(\.\d+)?|true|false", raw) else raw
    except ValueError:
        return raw


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and (" " in value or not value):
        return f'"{value}"'
    return str(value)


def _error(number: int, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"Modelfile line {number}: {message}")
