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


class BodySchema:
    """A whole request body held to its JSON schema, nested fields included (the schema
    ``/openapi.json`` publishes for the route, ``$ref`` s into ``components``): what a
    client reads in the description is what the server accepts. The first problem is a
    400 naming the field by its path (``messages[0].role``), said as ``check_fields`` says
    it.

    Example:
        >>> schema = {"type": "object", "properties": {"messages": {"type": "array",
        ...           "items": {"type": "object", "required": ["role"]}}}}
        >>> BodySchema(schema).check({"messages": [{"content": "hi"}]})
        Traceback (most recent call last):
        ...
        adam_integrations.core.errors.InvalidRequestError: messages[0] needs "role"
    """

    def __init__(self, schema: Mapping[str, Any],
                 components: Mapping[str, Any] | None = None) -> None:
        import jsonschema

        root = {**schema, "components": {"schemas": dict(components or {})}}
        self._validator = jsonschema.Draft202012Validator(root)

    def check(self, body: Mapping[str, Any]) -> None:
        """InvalidRequestError (with ``param``: the top-level field) for the first problem."""
        from jsonschema.exceptions import best_match

        error = best_match(self._validator.iter_errors(body), key=_relevance)
        if error is not None:
            path = list(error.absolute_path)
            raise InvalidRequestError(_said(error), param=str(path[0]) if path else None)


def _relevance(error: Any) -> tuple[int, int]:
    """Deeper problems first (they say the most), then problems that are not the null
    branch of an optional field."""
    return (-len(error.path), 0 if error.validator == "type" and error.validator_value
            == "null" else 1)


def _where(path: Any) -> str:
    where = ""
    for part in path:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "the request body"


def _said(error: Any) -> str:
    """A jsonschema error in this module's words: "<field> must be <what>, got <value>"."""
    where = _where(error.absolute_path)
    if error.validator in ("anyOf", "oneOf") and error.context:
        here = [e for e in error.context if not e.relative_path]
        deeper = [e for e in error.context if e.relative_path]
        if deeper and (not here or len(deeper) >= len(here)):
            from jsonschema.exceptions import best_match

            return _said(best_match(deeper, key=_relevance))
        expected = [e for e in (_expected(e) for e in here) if e and e != "null"]
        if expected:
            return (f"{where} must be {' or '.join(dict.fromkeys(expected))}, got "
                    f"{_shown(error.instance)}")
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{where} needs \"{missing}\""
    expected = _expected(error)
    if expected is None:
        return f"{where}: {error.message}"
    return f"{where} must be {expected}, got {_shown(error.instance)}"


def _expected(error: Any) -> str | None:
    """What the value should have been, for the keywords ``check_fields`` words."""
    schema, kind = error.schema, error.validator
    if kind in ("type", "const", "enum", "minimum", "maximum", "minLength", "maxLength",
                "minItems", "maxItems"):
        return _problem(error.instance, {kind: schema[kind]})
    if kind == "pattern":
        why = schema.get("description")
        return f"of the form {why}" if why else f"text matching {schema['pattern']}"
    if kind == "not":
        return f"anything but {_shown(schema['not'].get('const', schema['not']))}"
    if kind == "minProperties":
        return f"an object with at least {schema['minProperties']} field(s)"
    return None
