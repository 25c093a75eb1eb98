"""Reading a request body: a JSON object, nested at most ``MAX_DEPTH`` deep, with at most
``MAX_VALUES`` values, holding only valid Unicode; anything else is a 400 that says what
was wrong, before a route looks at it.

Numbers are read as JSON Schema reads them: ``2.0`` is the integer 2. Python's ``json``
reads what the routes must never see: nesting deep enough to exhaust
the interpreter's stack (here, or in whatever walks the value next), lone UTF-16
surrogates (``"\\ud800"``), which no tokenizer can encode, ``NaN`` / ``Infinity``, and
millions of tiny values (``[[],[],...]``: 11 million in a 31 MiB body took 10 s and 2 GB
to read). The values are counted before anything is parsed, and a large body is parsed on
a worker thread, so one request never holds up the others' answers.

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

import asyncio
import json
import re
from typing import Any

from starlette.requests import Request

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.wire.request import BodySchema

MAX_DEPTH = 64
"""Objects and arrays within each other; JSON schemas in ``format`` and tool parameters
are the deepest thing a client sends, and real ones stay far below this."""
MAX_VALUES = 1_000_000
"""Values in one body (array items and object members): a few thousand texts to embed,
or prompts as token ids for a whole context window, are far below this."""
PARSED_ON_THE_LOOP = 256 * 1024
"""Bodies up to this many bytes are parsed where they arrive (about a millisecond);
larger ones on a worker thread."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: linear and fast


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a checked JSON object (InvalidRequestError, a 400, if not),
    held to the schema the app's ``/openapi.json`` describes for the route
    (``app.state.request_schemas``)."""
    body = await request.body()
    schemas = getattr(request.app.state, "request_schemas", None)
    schema = schemas.of(request.url.path, request.method) if schemas is not None else None
    if len(body) <= PARSED_ON_THE_LOOP:
        return parse_json_object(body, schema)
    return await asyncio.to_thread(parse_json_object, body, schema)


def parse_json_object(body: bytes, schema: BodySchema | None = None) -> dict[str, Any]:
    """``body`` parsed and checked (see the module docstring), then held to ``schema``;
    an empty body is ``{}``."""
    values = _values_at_most(body)
    if values > MAX_VALUES:
        raise InvalidRequestError(
            f"the request body holds about {values:,} values (array items and object "
            f"members); at most {MAX_VALUES:,} are accepted: send fewer, or in several "
            "requests")
    try:
        data = json.loads(body or b"{}", parse_constant=_refuse_constant,
                          parse_float=_number)
    except RecursionError:
        raise InvalidRequestError(
            f"the request body is nested too deeply; at most {MAX_DEPTH} levels of objects "
            "and arrays are accepted") from None
    except ValueError as error:  # UnicodeDecodeError included
        raise InvalidRequestError(f"invalid JSON in the request body: {error}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    _check(data)
    if schema is not None:
        schema.check(data)
    return data


def _values_at_most(body: bytes) -> int:
    """About how many values ``body`` holds, never fewer: its commas and opening brackets
    outside strings. A body of N bytes holds at most N / 2 values, so small bodies are not
    looked at, and commas inside strings are only told apart when they matter."""
    if len(body) <= 2 * MAX_VALUES:
        return len(body) // 2

    def count(data: bytes) -> int:
        return data.count(b",") + data.count(b"[") + data.count(b"{")

    total = count(body)
    return total if total <= MAX_VALUES else count(_STRING.sub(b'""', body))


def _number(text: str) -> int | float:
    """A JSON number written with a fraction or exponent: an integer when it is one
    (``2.0``, ``1e3``), as JSON Schema and JavaScript read it, so a field that takes an
    integer takes it; else a float."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


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
