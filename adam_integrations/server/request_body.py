"""Reading a request body: a JSON object, nested at most ``MAX_DEPTH`` deep, holding only
valid Unicode; anything else is a 400 that says what was wrong, before a route looks at it.

Python's ``json`` reads what the routes must never see: nesting deep enough to exhaust
the interpreter's stack (here, or in whatever walks the value next), lone UTF-16
surrogates (``"\\ud800"``), which no tokenizer can encode, and ``NaN`` / ``Infinity``.

Example:
    >>> parse_json_object(b'{"model": "smollm2:135m"}')
    {'model': 'smollm2:135m'}
    >>> parse_json_object(b'{"prompt": "\\\\ud800"}')
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: prompt holds a lone UTF-16 \
surrogate (\\ud800), which is not valid Unicode; send the text as valid UTF-8
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from adam_integrations.core.errors import InvalidRequestError

MAX_DEPTH = 64
"""Objects and arrays within each other; JSON schemas in ``format`` and tool parameters
are the deepest thing a client sends, and real ones stay far below this."""

_SURROGATE = re.compile("[\ud800-\udfff]")


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a checked JSON object (InvalidRequestError, a 400, if not)."""
    return parse_json_object(await request.body())


def parse_json_object(body: bytes) -> dict[str, Any]:
    """``body`` parsed and checked (see the module docstring); an empty body is ``{}``."""
    try:
        data = json.loads(body or b"{}", parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidRequestError(
            f"the request body is nested too deeply; at most {MAX_DEPTH} levels of objects "
            "and arrays are accepted") from None
    except ValueError as error:  # UnicodeDecodeError included
        raise InvalidRequestError(f"invalid JSON in the request body: {error}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    _check(data)
    return data


def _refuse_constant(name: str) -> Any:
    raise InvalidRequestError(f"{name} is not a JSON number; send a finite number")


def _check(data: dict[str, Any]) -> None:
    """Depth and Unicode, walked without recursion (the value may be deep)."""
    pending: list[tuple[Any, str, int]] = [(data, "", 1)]
    while pending:
        value, where, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value, where)
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise InvalidRequestError(
                f"{where or 'the request body'} is nested too deeply; at most {MAX_DEPTH} "
                "levels of objects and arrays are accepted")
        if isinstance(value, dict):
            for key, item in value.items():
                path = f"{where}.{key}" if where else str(key)
                _check_text(key, path)
                pending.append((item, path, depth + 1))
        else:
            pending.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))


def _check_text(text: str, where: str) -> None:
    found = _SURROGATE.search(text)
    if found is not None:
        raise InvalidRequestError(
            f"{where or 'a key'} holds a lone UTF-16 surrogate (\\u{ord(found.group()):04x}), "
            "which is not valid Unicode; send the text as valid UTF-8", param=where or None)
