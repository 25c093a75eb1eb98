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
        adam_integrations.core.errors.InvalidRequestError: messages[0].role is required
    """

    def __init__(self, schema: Mapping[str, Any],
                 components: Mapping[str, Any] | None = None) -> None:
        import jsonschema

        root = {**schema, "components": {"schemas": dict(components or {})}}
        self._validator = jsonschema.Draft202012Validator(root)

    def check(self, body: Mapping[str, Any]) -> None:
        """InvalidRequestError (with ``param``: the top-level field) for the first problem."""
        from jsonschema.exceptions import best_match

        # best_match takes the error of the branch whose type the value has (an object
        # given to an optional object field: its problem, not "must be null")
        error = best_match(self._validator.iter_errors(body))
        if error is not None:
            path = list(error.absolute_path)
            raise InvalidRequestError(_said(error, self._validator.schema),
                                      param=str(path[0]) if path else None)


def _is_null_branch(error: Any) -> bool:
    return error.validator == "type" and error.validator_value == "null"


def _where(path: Any) -> str:
    where = ""
    for part in path:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where


def _said(error: Any, root: Mapping[str, Any]) -> str:
    """A jsonschema error in this module's words: "<field> must be <what> (<the field's
    description>), got <value>"."""
    where = _where(error.absolute_path)
    if error.validator in ("anyOf", "oneOf") and error.context:
        branches = [e for e in error.context if not _is_null_branch(e)]
        if len({e.schema_path[0] for e in branches}) == 1 or any(
                e.relative_path for e in branches):
            # the branch the value got furthest into (its role or type matched) says most
            return _said(max(branches, key=lambda e: len(e.absolute_path)), root)
        expected = [e for e in (_expected(e) for e in branches) if e] or ["null"]
        return (f"{where or 'the request body'} must be "
                f"{' or '.join(dict.fromkeys(expected))}{_why(error, root)}, got "
                f"{_shown(error.instance)}")
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{where}.{missing} is required" if where else f"{missing} is required"
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        return _unknown_fields(error, where)
    if error.validator == "pattern" and isinstance(error.instance, str):
        why = _description(error, root)
        if why and why.startswith(("a ", "an ")):
            return f"{_quoted(error.instance)} is not {why}"
        return (f"{_quoted(error.instance)} is not a valid {where}"
                + (f": {why}" if why else f" (it must match {error.schema['pattern']})"))
    expected = _expected(error)
    if expected is None:
        return f"{where or 'the request body'}: {error.message}"
    return (f"{where or 'the request body'} must be {expected}{_why(error, root)}, got "
            f"{_shown(error.instance)}")


def _unknown_fields(error: Any, where: str) -> str:
    from adam_integrations.core.registry import did_you_mean

    known = sorted(error.schema.get("properties", {}))
    unknown = sorted(set(error.instance) - set(known))
    names = ", ".join(map(repr, unknown))
    return (f"unknown field{'s' if len(unknown) > 1 else ''} {names}"
            f"{' in ' + where if where else ''}{did_you_mean(unknown, known)}; "
            f"{where or 'this endpoint'} takes {', '.join(known)}")


def _why(error: Any, root: Mapping[str, Any]) -> str:
    description = _description(error, root)
    if description is None and isinstance(error.schema, Mapping):  # said in a branch
        description = next((branch["description"] for branch in error.schema.get(
            "anyOf", error.schema.get("oneOf", [])) if isinstance(branch, Mapping)
            and isinstance(branch.get("description"), str)), None)
    return f" ({description})" if description else ""


def _description(error: Any, root: Mapping[str, Any]) -> str | None:
    """The failing field's own description: the last one on the schema's way down to
    it since it entered that field (not its parent object's)."""
    node: Any = root
    found = None
    path = list(error.absolute_schema_path)
    while True:
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            node = _pointer(root, node["$ref"])
        if isinstance(node, Mapping) and isinstance(node.get("description"), str):
            found = node["description"]
        if not path:
            break
        key = path.pop(0)
        try:
            if key == "properties" and path:
                node, found = node["properties"][path.pop(0)], None
            elif key in ("items", "additionalProperties"):
                node, found = node[key], None
            else:
                node = node[key]
        except (KeyError, IndexError, TypeError):
            break
    return found


def _pointer(root: Mapping[str, Any], reference: str) -> Any:
    node: Any = root
    for part in reference.removeprefix("#/").split("/"):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _quoted(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _expected(error: Any) -> str | None:
    """What the value should have been, for the keywords ``check_fields`` words."""
    schema, kind = error.schema, error.validator
    if kind in ("type", "const", "enum", "minimum", "maximum", "minLength", "maxLength",
                "minItems", "maxItems"):
        return _problem(error.instance, {kind: schema[kind]})
    if kind == "pattern":
        return f"text matching {schema['pattern']}"
    if kind == "not":
        return f"anything but {_shown(schema['not'].get('const', schema['not']))}"
    if kind == "minProperties":
        return f"an object with at least {schema['minProperties']} field(s)"
    if kind == "exclusiveMinimum":
        return f"more than {schema['exclusiveMinimum']}"
    return None
