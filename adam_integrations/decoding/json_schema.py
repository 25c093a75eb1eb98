"""JSON schemas made ready for constrained decoding: every keyword enforced, or refused, or
relaxed on purpose and said so.

xgrammar (``decoding.grammar``) enforces most of JSON Schema, but it silently ignores some
keywords, reads a few differently, and raises on others. A schema goes through
``prepare_schema`` first, which walks it once and, keyword by keyword:

- **keeps** what xgrammar enforces: ``type`` (also lists), ``enum``, ``const``, integer and
  number ranges (also exclusive), integer ``multipleOf``, ``minLength``/``maxLength``,
  ``pattern``, the formats in ``ENFORCED_FORMATS``, ``items``, ``prefixItems``,
  ``minItems``/``maxItems``, ``properties``, ``required``, ``additionalProperties``,
  ``patternProperties``, ``propertyNames``, ``minProperties``/``maxProperties``, local
  ``$ref`` (recursive ones too), ``anyOf``;
- **rewrites** what it can enforce another way, always to a schema whose every answer is
  valid for the original: ``allOf`` merged into one schema; OpenAPI's ``nullable``;
  draft-07 tuple ``items``/``additionalItems``; ``contains`` (the first items are the ones
  contained); ``dependentRequired`` (the dependents become required); fractional integer
  bounds rounded inwards; bounds past +/- 10^15 (and missing ones) clamped there, so a
  small model cannot write digits forever; a ``pattern`` anchored at one end only is left
  open at the other (JSON Schema patterns are unanchored, xgrammar matches them whole); the
  IRI and IDN formats as their ASCII forms; a ``required`` name with no property schema;
- **relaxes**, with a ``SchemaRelaxationWarning`` at request time and the list in
  docs/thinking-tools-structured-output.md: ``oneOf`` read as ``anyOf`` (warned only
  when the branches can overlap),
  ``uniqueItems``, formats xgrammar does not know (``format`` is an annotation in JSON
  Schema), ``minLength``/``maxLength`` or ``format`` next to a ``pattern`` (the pattern
  wins), keywords no JSON Schema draft defines;
- **refuses**, with an ``InvalidRequestError`` naming the keyword and where it is:
  ``not``, ``if``/``then``/``else``, ``dependentSchemas``, ``unevaluatedItems``,
  ``maxContains``, dynamic and remote ``$ref``, ``multipleOf`` on a number, regex features
  no grammar can express (look-around, back-references, word boundaries, Unicode classes),
  and contradictions (``minimum`` above ``maximum``, an empty ``enum``, ...).

Example:
    >>> prepared = prepare_schema({"type": "integer", "minimum": 0.5, "maximum": 130})
    >>> prepared.schema
    {'type': 'integer', 'minimum': 1, 'maximum': 130}
    >>> prepare_schema({"not": {"type": "string"}}).schema
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: the schema keyword 'not' (at #/not) ...
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adam_integrations.core.errors import InvalidRequestError, SchemaRelaxationWarning

NUMBER_BOUND = 10**15 - 1
"""Numbers are kept within +/- this (xgrammar stops at int64; small models at far less)."""

ENFORCED_FORMATS = frozenset({
    "email", "date", "time", "date-time", "duration", "uuid", "uri", "uri-reference",
    "uri-template", "ipv4", "ipv6", "hostname", "json-pointer", "relative-json-pointer"})
_ASCII_FORMS = {"idn-email": "email", "idn-hostname": "hostname", "iri": "uri",
                "iri-reference": "uri-reference"}

_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_STRICTER_FORMATS = {"ipv4": f"^({_OCTET}\\.){{3}}{_OCTET}$"}

_ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "example", "$schema", "$id", "$comment",
    "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType",
    "contentSchema", "discriminator", "xml", "externalDocs", "$anchor", "definitions",
    "$defs", "minContains"})
_KEPT = frozenset({
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minLength", "maxLength", "pattern", "format", "items", "prefixItems",
    "minItems", "maxItems", "properties", "required", "additionalProperties",
    "patternProperties", "propertyNames", "minProperties", "maxProperties", "$ref", "anyOf",
    "oneOf", "allOf", "nullable", "uniqueItems", "contains", "additionalItems",
    "dependentRequired", "dependencies", "unevaluatedProperties"})
_REFUSED = {
    "not": "", "if": "", "then": "", "else": "", "dependentSchemas": "",
    "unevaluatedItems": " (use items or prefixItems)", "maxContains": "",
    "$dynamicRef": "", "$dynamicAnchor": "", "$recursiveRef": "", "$recursiveAnchor": ""}
_UNSUPPORTED_REGEX = [
    (re.compile(r"\(\?<?[=!]"), "look-around"),
    (re.compile(r"(?<!\\)\\[1-9]|\\k<"), "back-references"),
    (re.compile(r"(?<!\\)\\[bB]"), "word boundaries"),
    (re.compile(r"(?<!\\)\\[pP]\{"), "Unicode property classes"),
    (re.compile(r"\(\?>"), "atomic groups"),
]


@dataclass(frozen=True)
class PreparedSchema:
    """A schema ready for xgrammar, and what was relaxed to get it (empty: nothing)."""

    schema: Any
    relaxations: tuple[str, ...] = ()

    def warn(self) -> None:
        """Tell the caller, once per request, what the answer may not honour."""
        for relaxation in self.relaxations:
            warnings.warn(relaxation, SchemaRelaxationWarning, stacklevel=3)


def prepare_schema(schema: Any) -> PreparedSchema:
    """``schema`` checked keyword by keyword and rewritten for xgrammar (module docstring).

    Raises ``InvalidRequestError`` naming the keyword and its place for what cannot be
    enforced.
    """
    walker = _Walker(schema)
    return PreparedSchema(walker.walk(schema, "#"), tuple(dict.fromkeys(walker.relaxations)))


class _Walker:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.relaxations: list[str] = []

    def walk(self, schema: Any, path: str) -> Any:
        if isinstance(schema, bool):
            if schema is False and path == "#":
                raise InvalidRequestError("the schema is `false`, which no answer satisfies")
            return schema
        if not isinstance(schema, Mapping):
            raise InvalidRequestError(f"the schema at {path} is not an object: {schema!r}")
        schema = dict(schema)
        for key in schema:
            self._check_keyword(key, schema, path)
        if "anyOf" in schema and "oneOf" in schema:
            raise InvalidRequestError(
                f"anyOf and oneOf together at {path} cannot be enforced; nest one in the other")
        if "allOf" in schema:
            schema = self._merge_all_of(schema, path)
        if schema.pop("nullable", False) is True:
            return {"anyOf": [self.walk(schema, path), {"type": "null"}]}
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in ("$defs", "definitions") or key in ("properties", "patternProperties"):
                out[key] = {name: self.walk(sub, f"{path}/{key}/{name}")
                            for name, sub in value.items()}
            elif key in ("anyOf", "oneOf", "prefixItems"):
                out["anyOf" if key == "oneOf" else key] = [
                    self.walk(sub, f"{path}/{key}/{i}") for i, sub in enumerate(value)]
            elif key in ("items", "additionalProperties", "propertyNames", "contains",
                         "additionalItems", "unevaluatedProperties"):
                out[key] = (self.walk(value, f"{path}/{key}") if not isinstance(value, list)
                            else [self.walk(sub, f"{path}/{key}/{i}")
                                  for i, sub in enumerate(value)])
            elif key == "$ref":
                out[key] = self._checked_ref(value, path)
            elif key.startswith("x-") or key not in _KEPT:
                continue  # annotations, extensions, and keywords no draft defines
            else:
                out[key] = value
        if "oneOf" in schema and _may_overlap(schema["oneOf"]):
            self.relax(f"oneOf at {path} is decoded as anyOf: the answer matches at least "
                       "one branch, and may match more than one")
        self._numbers(out, path)
        self._strings(out, path)
        self._arrays(out, path)
        self._objects(out, path)
        return out

    def relax(self, message: str) -> None:
        self.relaxations.append(message)

    # -- keywords ------------------------------------------------------------------
    def _check_keyword(self, key: str, schema: Mapping[str, Any], path: str) -> None:
        if key in _REFUSED:
            raise InvalidRequestError(
                f"the schema keyword {key!r} (at {path}/{key}) cannot be enforced while "
                f"decoding{_REFUSED[key]}; rewrite the schema without it")
        if key not in _KEPT and key not in _ANNOTATIONS and not key.startswith("x-"):
            self.relax(f"the keyword {key!r} at {path} is not JSON Schema and is ignored")

    def _checked_ref(self, ref: Any, path: str) -> str:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise InvalidRequestError(
                f"$ref {ref!r} at {path} is not a reference inside the schema; only local "
                "references ('#/$defs/...') can be decoded: inline the referenced schema")
        _resolve(self.root, ref, path)
        return ref

    def _numbers(self, s: dict[str, Any], path: str) -> None:
        numeric = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
        if "type" not in s and not numeric & set(s):
            return  # any value: nothing to bound
        types = _types(s)
        if not types & {"integer", "number"} or {"enum", "const"} & set(s):
            return
        integer = types <= {"integer"}
        if "multipleOf" in s and not (integer and float(s["multipleOf"]).is_integer()):
            raise InvalidRequestError(
                f"multipleOf {s['multipleOf']!r} at {path} can be enforced on integers only; "
                "use an integer type (in the unit's smallest step) or drop multipleOf")
        low = _bound(s, "minimum", "exclusiveMinimum", lower=True, integer=integer)
        high = _bound(s, "maximum", "exclusiveMaximum", lower=False, integer=integer)
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            s.pop(key, None)
        (low_value, low_open), (high_value, high_open) = low, high
        if low_value > high_value or (low_value == high_value and (low_open or high_open)):
            raise InvalidRequestError(
                f"the range at {path} is empty (minimum {low_value}, maximum {high_value})")
        s["exclusiveMinimum" if low_open else "minimum"] = low_value
        s["exclusiveMaximum" if high_open else "maximum"] = high_value

    def _strings(self, s: dict[str, Any], path: str) -> None:
        if "minLength" in s and "maxLength" in s and s["minLength"] > s["maxLength"]:
            raise InvalidRequestError(
                f"minLength {s['minLength']} is above maxLength {s['maxLength']} at {path}")
        if "format" in s:
            fmt = _ASCII_FORMS.get(s["format"], s["format"])
            if fmt not in ENFORCED_FORMATS:
                self.relax(f"format {s['format']!r} at {path} is not enforced (the formats "
                           f"enforced are {', '.join(sorted(ENFORCED_FORMATS))})")
                del s["format"]
            elif fmt in _STRICTER_FORMATS:  # xgrammar's own accepts leading zeros
                del s["format"]
                s.setdefault("pattern", _STRICTER_FORMATS[fmt])
            else:
                s["format"] = fmt
        if "pattern" in s:
            s["pattern"] = _generation_pattern(s["pattern"], path)
            dropped = [k for k in ("minLength", "maxLength", "format") if k in s]
            if dropped:
                self.relax(f"{' and '.join(dropped)} next to a pattern at {path} "
                           "are not enforced: only the pattern is")
                for key in dropped:
                    del s[key]

    def _arrays(self, s: dict[str, Any], path: str) -> None:
        if isinstance(s.get("items"), list):  # draft-07 tuples
            s["prefixItems"] = s.pop("items")
            if "additionalItems" in s:
                s["items"] = s.pop("additionalItems")
        s.pop("additionalItems", None)
        if "contains" in s:
            contained = s.pop("contains")
            count = int(s.pop("minContains", 1))
            if "prefixItems" in s:
                raise InvalidRequestError(
                    f"contains next to prefixItems at {path} cannot be enforced; put the "
                    "contained item in prefixItems")
            item = _merge([contained, s["items"]], f"{path}/contains", self) \
                if isinstance(s.get("items"), Mapping) else contained
            if count:
                s["prefixItems"] = [item] * count
                s["minItems"] = max(count, s.get("minItems", 0))
        if s.pop("uniqueItems", False) is True:
            self.relax(f"uniqueItems at {path} is not enforced: the items may repeat")
        if s.get("minItems", 0) > s.get("maxItems", math.inf):
            raise InvalidRequestError(
                f"minItems {s['minItems']} is above maxItems {s['maxItems']} at {path}")

    def _objects(self, s: dict[str, Any], path: str) -> None:
        dependent = s.pop("dependentRequired", {}) or {}
        for key, value in (s.pop("dependencies", {}) or {}).items():
            if not isinstance(value, list):
                raise InvalidRequestError(
                    f"dependencies with a schema (at {path}/dependencies/{key}) cannot be "
                    "enforced; rewrite the schema without it")
            dependent[key] = value
        if dependent:  # "if a then b": b always present satisfies it
            names = [n for names in dependent.values() for n in names]
            s["required"] = list(dict.fromkeys([*s.get("required", []), *names]))
        if s.get("unevaluatedProperties") is False and "additionalProperties" not in s:
            s["additionalProperties"] = False
        s.pop("unevaluatedProperties", None)
        if "patternProperties" in s:
            s["patternProperties"] = {
                _generation_pattern(p, f"{path}/patternProperties"): sub
                for p, sub in s["patternProperties"].items()}
        properties = s.setdefault("properties", {}) if s.get("required") else None
        for name in s.get("required", []):
            if name in properties:
                continue
            extra = s.get("additionalProperties", True)
            if extra is False:
                raise InvalidRequestError(
                    f"{name!r} is required at {path} but has no property schema and "
                    "additionalProperties is false, so no answer can have it")
            properties[name] = extra if isinstance(extra, Mapping) else {}
        if s.get("minProperties", 0) > s.get("maxProperties", math.inf):
            raise InvalidRequestError(
                f"minProperties is above maxProperties at {path}")

    def _merge_all_of(self, schema: dict[str, Any], path: str) -> dict[str, Any]:
        parts = [_resolve(self.root, p["$ref"], path) if isinstance(p, Mapping) and
                 set(p) <= {"$ref"} | _ANNOTATIONS else p for p in schema.pop("allOf")]
        return _merge([schema, *parts], f"{path}/allOf", self)


def _merge(schemas: list[Any], path: str, walker: _Walker) -> dict[str, Any]:
    """One schema that every answer valid for it satisfies all of ``schemas`` (allOf)."""
    merged: dict[str, Any] = {}
    for schema in schemas:
        if schema is True:
            continue
        if schema is False:
            raise InvalidRequestError(f"allOf at {path} contains `false`: nothing satisfies it")
        schema = dict(schema)
        if "allOf" in schema:
            schema = walker._merge_all_of(schema, path)
        for key, value in schema.items():
            if key not in merged or key in _ANNOTATIONS:
                merged[key] = copy.deepcopy(value)
            elif merged[key] == value:
                continue
            elif key == "properties":
                for name, sub in value.items():
                    merged[key][name] = (_merge([merged[key][name], sub], f"{path}/{name}",
                                                walker) if name in merged[key] else sub)
            elif key == "required":
                merged[key] = list(dict.fromkeys([*merged[key], *value]))
            elif key == "type":
                both = _types({"type": merged[key]}) & _types({"type": value})
                if not both:
                    raise InvalidRequestError(f"allOf at {path} asks for types that exclude "
                                              f"each other: {merged[key]!r} and {value!r}")
                merged[key] = sorted(both) if len(both) > 1 else both.pop()
            elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems",
                         "minProperties"):
                merged[key] = max(merged[key], value)
            elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems",
                         "maxProperties"):
                merged[key] = min(merged[key], value)
            elif key == "enum":
                merged[key] = [v for v in merged[key] if v in value]
                if not merged[key]:
                    raise InvalidRequestError(f"allOf at {path} has enums with no common value")
            elif key in ("additionalProperties", "items") and isinstance(value, Mapping) \
                    and isinstance(merged[key], Mapping):
                merged[key] = _merge([merged[key], value], f"{path}/{key}", walker)
            elif key == "additionalProperties" and False in (value, merged[key]):
                merged[key] = False
            else:
                raise InvalidRequestError(
                    f"allOf at {path} gives {key!r} two different values ({merged[key]!r} and "
                    f"{value!r}), which cannot be enforced together; merge them by hand")
    return merged


def _bound(s: Mapping[str, Any], inclusive: str, exclusive: str, *, lower: bool,
           integer: bool) -> tuple[int | float, bool]:
    """The tighter of a schema's inclusive and exclusive bound as (value, exclusive);
    integers get an inclusive whole number; clamped to +/- ``NUMBER_BOUND``."""
    candidates = []
    if inclusive in s:  # draft-04 says "exclusive" with a boolean next to the bound
        candidates.append((s[inclusive], s.get(exclusive) is True))
    if exclusive in s and not isinstance(s[exclusive], bool):
        candidates.append((s[exclusive], True))
    limit = -NUMBER_BOUND if lower else NUMBER_BOUND
    if not candidates:
        return limit, False
    if lower:  # the larger minimum; on a tie, the exclusive one
        value, is_open = max(candidates, key=lambda c: (c[0], c[1]))
    else:
        value, is_open = min(candidates, key=lambda c: (c[0], not c[1]))
    if integer:
        whole = math.ceil(value) if lower else math.floor(value)
        if is_open and whole == value:
            whole += 1 if lower else -1
        value, is_open = int(whole), False
    if (value < limit) if lower else (value > limit):
        return limit, False
    return value, is_open


def _generation_pattern(pattern: Any, path: str) -> str:
    """A JSON Schema (search) pattern as a whole-string pattern for xgrammar.

    Anchored at both ends or neither: matched whole (every such answer also matches the
    unanchored search). Anchored at one end only: left open at the other, so ``^x-`` still
    allows ``x-anything``.
    """
    if not isinstance(pattern, str):
        raise InvalidRequestError(f"the pattern at {path} is not a string: {pattern!r}")
    for check, feature in _UNSUPPORTED_REGEX:
        if check.search(pattern):
            raise InvalidRequestError(
                f"the pattern {pattern!r} at {path} uses {feature}, which no grammar can "
                "enforce; rewrite it without them")
    try:
        re.compile(pattern)
    except re.error as error:
        raise InvalidRequestError(f"the pattern {pattern!r} at {path} is not a valid "
                                  f"regular expression: {error}") from None
    starts = pattern.startswith("^")
    ends = pattern.endswith("$") and not pattern.endswith("\\$")
    core = pattern[1 if starts else 0: len(pattern) - 1 if ends else len(pattern)]
    if starts == ends:
        return f"^{core}$" if starts else core
    return f"^{core}.*$" if starts else f"^.*{core}$"


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if kind is None:
        return {"string", "number", "integer", "boolean", "null", "array", "object"}
    kinds = set(kind) if isinstance(kind, list) else {kind}
    return kinds | ({"integer"} if "number" in kinds else set())


def _may_overlap(branches: list[Any]) -> bool:
    """Whether two ``oneOf`` branches could accept the same answer (a cheap check: single
    distinct types, or a shared property with distinct ``const``/``enum`` values, say no)."""
    if not all(isinstance(b, Mapping) for b in branches):
        return True
    kinds = [b.get("type") for b in branches]
    if all(isinstance(k, str) for k in kinds) and len(set(kinds)) == len(kinds) and \
            not {"integer", "number"} <= set(kinds):
        return False
    shared = set.intersection(*(set(b.get("properties", {})) for b in branches)) \
        if branches else set()
    for name in shared:
        values = [b["properties"][name] for b in branches]
        if all(isinstance(v, Mapping) and "const" in v for v in values) and \
                len({repr(v["const"]) for v in values}) == len(values):
            return False
    return True


def _resolve(root: Any, ref: str, path: str) -> Any:
    """The schema a local ``$ref`` points at (refused when it points nowhere)."""
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise InvalidRequestError(
                f"$ref {ref!r} at {path} points at nothing in the schema; define it (e.g. "
                "under $defs) or fix the reference")
    return node
