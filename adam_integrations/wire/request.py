"""What every request model of the wire formats shares: the pydantic base (``RequestPart``,
``WireRequest``), the JSON schema made from a model (which ``/openapi.json`` publishes),
and a refused body said in this project's words.

Each wire module declares its requests as pydantic models (``wire.ollama.ChatRequest``,
``wire.openai.ChatCompletionRequest``, ...); ``WireRequest.parse`` reads a JSON body into
one, and its ``to_config()`` gives the core's ``GenerationConfig``. The same model is the
description (``json_schema``) and the check, so they cannot drift apart.

The rules every model follows, as OpenAI's and Ollama's servers read requests:

- types are strict: ``"1"`` is not the number 1, nor ``1`` true;
- a null is the field left out (the ``openai`` SDK dumps unset fields as null), so every
  optional field is ``X | None = None``;
- fields not listed are allowed and ignored, as Ollama ignores them (``ClosedPart`` for
  the bodies that refuse them, ``NullExtras`` for the parts that take them only as null).

A refused body is said as ``"<field> must be <what> (<the field's description>), got
<value>"``: pydantic finds that the body is wrong, and the first problem is worded from
the published schema (``jsonschema``'s most relevant error), so the message names what the
description says. The wording is kept in this module's ``_said``.

Example:
    >>> class Example(WireRequest):
    ...     stream: bool | None = Field(None, description="stream the answer")
    >>> Example.parse({"stream": "yes"})
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.InvalidRequestError: stream must be true or false \
(stream the answer), got "yes"
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from typing_extensions import Self

from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.tools import TOOL_NAME_PATTERN
from adam_integrations.core.types import (
    GENERATION_RANGES,
    ROLE_ALIASES,
    ROLES,
    THINKING_LEVELS,
)

COMPONENTS = "#/components/schemas/{model}"
"""Where ``/openapi.json`` keeps the parts its request bodies share."""


def _published(schema: dict[str, Any], part: type[BaseModel]) -> None:
    """A part's schema as users read it: its ``described`` text (never its docstring,
    which is for readers of the code), no generated titles."""
    schema.pop("title", None)
    schema.pop("description", None)
    described = getattr(part, "described", None)
    if described:
        schema["description"] = described


class RequestPart(BaseModel):
    """An object inside a request body (the rules are in the module docstring)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True,
                              regex_engine="python-re", json_schema_extra=_published)
    described: ClassVar[str | None] = None
    """What the part is, in the published schema and in the errors about it."""

    _sent: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_sent(cls, data: Any, read: Any) -> Any:
        part = read(data)
        if isinstance(data, dict):
            part._sent = data
        return part

    def plain(self) -> dict[str, Any]:
        """The part exactly as it was sent, once checked (for the core's readers of
        messages, tools and schemas, which take OpenAI's, LangChain's and LlamaIndex's
        shapes: a user's JSON schema reaches the model's prompt key for key, in order)."""
        return self._sent


class ClosedPart(RequestPart):
    """A part that refuses fields it does not list (vLLM's tokenizer routes do)."""

    model_config = ConfigDict(extra="forbid")


class NullExtras(RequestPart):
    """A part that takes more fields than it lists only as null (a chat message: a field
    this server would silently drop, such as ``images``, is refused instead)."""

    model_config = ConfigDict(json_schema_extra=lambda schema, part: (
        _published(schema, part), schema.update(additionalProperties={"type": "null"})))

    @model_validator(mode="after")
    def _extras_are_null(self) -> Self:
        for name, value in (self.model_extra or {}).items():
            if value is not None:
                raise ValueError(f"{name} is not taken here")
        return self


class WireRequest(RequestPart):
    """A whole request body: ``parse`` reads one, ``json_schema`` describes it."""

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Self:
        """``body`` (a parsed JSON object) as this request; InvalidRequestError (a 400,
        ``param``: the top-level field) for the first problem."""
        try:
            return cls.model_validate(body)
        except ValidationError as error:
            raise _refusal(cls, body, error) from None

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The body as a JSON schema (its shared parts under ``$defs``)."""
        return _schema_of(cls)


def _refusal(request: type[WireRequest], body: Mapping[str, Any],
             error: ValidationError) -> InvalidRequestError:
    said = BodySchema(request.json_schema()).problem(body)
    if said is not None:
        return said
    # a check the schema cannot say (a value pydantic cannot convert): pydantic's words
    first = error.errors(include_url=False)[0]
    where = _where(part for part in first["loc"] if isinstance(part, (int, str)))
    return InvalidRequestError(f"{where or 'the request body'}: {first['msg']}",
                               param=str(first["loc"][0]) if first["loc"] else None)


class _Generator(GenerateJsonSchema):
    """Schemas as this server publishes them: no ``"default": null`` (a null is the field
    left out) and no generated titles."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: Any) -> dict[str, Any]:
        generated = super().default_schema(schema)
        if generated.get("default", 0) is None:
            generated.pop("default")
        return generated

    def literal_schema(self, schema: Any) -> dict[str, Any]:
        """A literal as its values only: the values say the type (and a wrong value is
        said once, as "one of ...")."""
        generated = super().literal_schema(schema)
        generated.pop("type", None)
        return generated

    def generate(self, schema: Any, mode: Any = "validation") -> dict[str, Any]:
        return _type_first(super().generate(schema, mode))

    def generate_definitions(self, inputs: Any) -> Any:
        keys, definitions = super().generate_definitions(inputs)
        return keys, _type_first(definitions)


def _type_first(schema: Any) -> Any:
    """``schema`` with each object's ``type`` first: a value of the wrong type is said to
    be of the wrong type, before its bounds are looked at (jsonschema reports in key
    order)."""
    if isinstance(schema, dict):
        ordered = {key: _type_first(schema[key]) for key in ("type",) if key in schema}
        ordered.update((key, _type_first(value)) for key, value in schema.items()
                       if key != "type")
        return ordered
    if isinstance(schema, list):
        return [_type_first(item) for item in schema]
    return schema


@cache
def _schema_of(request: type[WireRequest]) -> dict[str, Any]:
    return request.model_json_schema(schema_generator=_Generator)


def request_schemas(requests: list[type[WireRequest]]
                    ) -> tuple[dict[type[WireRequest], dict[str, Any]], dict[str, Any]]:
    """Each request's body schema, with the parts they share as components (``$ref`` s
    into ``COMPONENTS``): what ``/openapi.json`` publishes."""
    schemas, shared = models_json_schema([(request, "validation") for request in requests],
                                         ref_template=COMPONENTS,
                                         schema_generator=_Generator)
    components = dict(shared.get("$defs", {}))
    bodies = {}
    for request in requests:
        name = schemas[(request, "validation")]["$ref"].rsplit("/", 1)[1]
        bodies[request] = components.pop(name)
    return bodies, components


# -- types the wire formats share ---------------------------------------------------------
def ranged(name: str, description: str | None = None, *, nullable: bool = True) -> Any:
    """The type of a ``GenerationConfig`` number in a request (``GENERATION_RANGES``), or
    null (unless not ``nullable``)."""
    limits = GENERATION_RANGES[name]
    bounds: dict[str, Any] = {}
    if limits.minimum is not None:
        bounds["gt" if limits.exclusive_minimum else "ge"] = limits.minimum
    if limits.maximum is not None:
        bounds["le"] = limits.maximum
    kind: Any = int if limits.integer else float
    return Annotated[kind | None if nullable else kind, Field(description=description,
                                                              **bounds)]


def exactly(value: bool) -> Any:
    """A field that takes one value (``true`` where ``false`` is not available), or null."""

    def check(given: bool) -> bool:
        if given is not value:
            raise ValueError(f"only {json.dumps(value)} is taken")
        return given

    return Annotated[bool, AfterValidator(check), WithJsonSchema({"const": value})] | None


Role = Literal[(*ROLES, *ROLE_ALIASES)]  # type: ignore[valid-type]
"""A message's role: the names ``ChatMessage.coerce`` reads roles by."""
ReasoningEffort = Literal[("none", "minimal", *THINKING_LEVELS)]  # type: ignore[valid-type]
"""OpenAI's ``reasoning_effort``: "minimal" and "none" are thinking off."""
ToolName = Annotated[str, Field(pattern=TOOL_NAME_PATTERN,
                                description="1-64 letters, digits, '_', '.' or '-'")]


class ToolParameters(RequestPart):
    """A tool's arguments as a JSON schema."""

    described = "a JSON schema of type object: the tool's arguments"
    type: Literal["object"]
    description: str | None = None
    properties: dict[str, dict[str, Any]] | None = None
    required: list[str] | None = None


class ToolFunction(RequestPart):
    """The function a tool calls."""

    name: ToolName
    description: str | None = None
    parameters: ToolParameters | None = None


class Tool(RequestPart):
    """A function tool, as OpenAI's chat API and Ollama's take it."""

    type: Literal["function"]
    function: ToolFunction


class CalledFunction(RequestPart):
    """The function an earlier answer called."""

    name: str = Field(min_length=1)
    arguments: str | dict[str, Any] | None = Field(
        None, description="a JSON object, or its text")


# -- wording -------------------------------------------------------------------------------
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),)}
_NAMES = {"string": "a string", "integer": "an integer", "number": "a number",
          "boolean": "true or false", "object": "an object", "array": "an array",
          "null": "null"}


def _problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    """What ``value`` should have been, or None when it follows ``schema`` (the keywords
    ``_expected`` words)."""
    if "const" in schema and not _same(value, schema["const"]):
        return _shown(schema["const"])
    if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
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
    return None


def _same(value: Any, wanted: Any) -> bool:
    """JSON equality: ``0`` is not ``false``."""
    return value == wanted and isinstance(value, bool) == isinstance(wanted, bool)


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
        missing = _missing(error)
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


def _missing(error: Any) -> str:
    """The field a ``required`` error is about."""
    return error.message.split("'")[1] if "'" in error.message else error.message


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
    """What the value should have been, for the keywords ``_problem`` words."""
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


class BodySchema:
    """A whole request body held to a JSON schema (the one ``/openapi.json`` publishes for
    the route, ``$ref`` s into ``components``), its first problem said as ``parse`` says
    it: the server holds every JSON body to its route's published schema, so what a
    client reads in the description is what it accepts.

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
        problem = self.problem(body)
        if problem is not None:
            raise problem

    def problem(self, body: Mapping[str, Any]) -> InvalidRequestError | None:
        """The first problem with ``body`` (None when it follows the schema)."""
        from jsonschema.exceptions import best_match

        # best_match takes the error of the branch whose type the value has (an object
        # given to an optional object field: its problem, not "must be null")
        error = best_match(self._validator.iter_errors(body))
        if error is None:
            return None
        path = list(error.absolute_path)
        if path:
            param: str | None = str(path[0])
        else:  # a field missing from the body itself is the one to name
            param = _missing(error) if error.validator == "required" else None
        return InvalidRequestError(_said(error, self._validator.schema), param=param)
