"""Request fields described once: each wire module lists the fields of its requests as
JSON schemas; ``check_fields`` holds a request to them before anything reads it (a wrong
type is a 400 naming the field), and ``server.openapi`` publishes the same schemas, so
the description and the parser cannot drift apart.

The check is shallow on purpose: the type of each field (and of a list's items), enums,
numeric bounds and lengths. What a field holds deeper (a message, a tool, a JSON schema) is
checked by the parser that reads it (``ChatMessage.coerce``, ``coerce_tools``, ...).

Example:
    >>> check_fields({"stream_options": "x"}, {"stream_options": {"type": "object"}})
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: stream_options must be an object, \
got "x"
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from adam_integrations.core.errors import InvalidRequestError

Schema = dict[str, Any]

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),)}
_NAMES = {"string": "a string", "integer": "an integer", "number": "a number",
          "boolean": "true or false", "object": "an object", "array": "an array",
          "null": "null"}


def check_fields(body: Mapping[str, Any], fields: Mapping[str, Schema]) -> None:
    """Raise InvalidRequestError (with ``param``) for the first field of ``body`` that
    ``fields`` describes and its value does not follow; null values and fields not
    described pass."""
    for name, schema in fields.items():
        value = body.get(name)
        if value is not None:
            problem = _problem(value, schema)
            if problem:
                why = f" ({schema['description']})" if schema.get("description") else ""
                raise InvalidRequestError(
                    f"{name} must be {problem}{why}, got {_shown(value)}", param=name)


def _problem(value: Any, schema: Schema) -> str | None:
    """What ``value`` should have been, or None when it follows ``schema``."""
    if "oneOf" in schema or "anyOf" in schema:
        branches = schema.get("oneOf") or schema.get("anyOf") or []
        problems = [_problem(value, branch) for branch in branches]
        return None if None in problems else " or ".join(dict.fromkeys(
            p for p in problems if p))
    if "const" in schema and value != schema["const"]:
        return _shown(schema["const"])
    if "enum" in schema and value not in schema["enum"]:
        shown = [_shown(v) for v in schema["enum"]]
        return shown[0] if len(shown) == 1 else "one of " + ", ".join(shown)
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, kind) for kind in kinds):
            return " or ".join(_NAMES[kind] for kind in kinds)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"at least {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"at most {schema['maximum']}"
    if isinstance(value, (str, list)):
        unit = "characters" if isinstance(value, str) else "items"
        low, high = ("minLength", "maxLength") if isinstance(value, str) else (
            "minItems", "maxItems")
        if low in schema and len(value) < schema[low]:
            return f"at least {schema[low]} {unit} long"
        if high in schema and len(value) > schema[high]:
            return f"at most {schema[high]} {unit} long"
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            problem = _problem(item, schema["items"])
            if problem:
                return f"an array of items that are each {problem}"
    return None


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[kind])


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
