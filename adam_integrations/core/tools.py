"""Tools, tool choice and response formats: validated once, backend-neutral.

Users (and the framework adapters) hand these over in the shapes they know: OpenAI-style
``{"type": "function", "function": {...}}`` dicts, flat ``{"name", "description",
"parameters"}`` dicts, pydantic models for response formats. Everything is turned into
``ToolSpec`` and ``ResponseFormat`` here, with errors that say what was wrong, before any
generation starts. Backends only read the normalized forms.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from adam_integrations.core.errors import InvalidInputTypeError, InvalidRequestError

TOOL_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
"""What a tool may be called (OpenAI's rule, with dots), as one regex."""
_TOOL_NAME = re.compile(TOOL_NAME_PATTERN)

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: a name, what it does, and a JSON schema for its arguments.

    Example:
        >>> ToolSpec.coerce({"type": "function", "function": {"name": "add",
        ...     "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}).name
        'add'
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _TOOL_NAME.match(self.name):
            raise InvalidRequestError(
                f"tool name {self.name!r} is not valid; use 1-64 letters, digits, '_', '.' or '-'"
            )
        if not isinstance(self.parameters or {}, Mapping):
            raise InvalidInputTypeError(
                f"the parameters of tool {self.name!r} must be a JSON schema object, got "
                f"{type(self.parameters).__name__}")
        if not isinstance(self.description, str):
            raise InvalidInputTypeError(f"the description of tool {self.name!r} must be a "
                                        "string")
        parameters = dict(self.parameters or {"type": "object", "properties": {}})
        if parameters.get("type") != "object":
            raise InvalidRequestError(
                f"the parameters of tool {self.name!r} must be a JSON schema of type 'object' "
                f"(got type {parameters.get('type')!r}); wrap single values in an object"
            )
        check_json_schema(parameters, what=f"the parameters schema of tool {self.name!r}")
        object.__setattr__(self, "parameters", parameters)

    @classmethod
    def coerce(cls, tool: ToolSpec | Mapping[str, Any]) -> ToolSpec:
        """Accept a ``ToolSpec``, an OpenAI-style function tool dict, or a flat dict."""
        if isinstance(tool, ToolSpec):
            return tool
        if not isinstance(tool, Mapping):
            raise InvalidInputTypeError(
                f"a tool must be a ToolSpec or a dict, got {type(tool).__name__}"
            )
        spec = tool.get("function", tool) if tool.get("type", "function") == "function" else None
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise InvalidRequestError(
                "a tool dict needs a 'name' (flat) or {'type': 'function', 'function': "
                f"{{'name': ...}}}}; got keys {sorted(tool)}"
            )
        return cls(
            name=spec["name"],
            description=spec.get("description") or "",
            parameters=spec.get("parameters") or {"type": "object", "properties": {}},
        )

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI / Hugging Face chat-template shape of this tool."""
        return {"type": "function", "function": {"name": self.name,
                                                 "description": self.description,
                                                 "parameters": dict(self.parameters)}}

    def call_schema(self) -> dict[str, Any]:
        """JSON schema of one call of this tool: ``{"name": <this>, "arguments": {...}}``.

        The parameters' ``$defs`` move to the call schema's root, so the references of a
        pydantic model with nested models still point at them:

        >>> spec = ToolSpec("save", parameters={"type": "object",
        ...     "properties": {"to": {"$ref": "#/$defs/Place"}},
        ...     "$defs": {"Place": {"type": "string"}}})
        >>> schema = spec.call_schema()
        >>> schema["properties"]["arguments"]["properties"]["to"], schema["$defs"]
        ({'$ref': '#/$defs/Place'}, {'Place': {'type': 'string'}})
        """
        return any_call_schema([self])


def any_call_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The JSON schema of one call of any of ``tools`` (one tool's alone, several as
    ``anyOf``): what forces a call where there is no ``tool_choice`` (a grammar, Ollama's
    ``format``, an engine's structured output).

    Each tool's ``$defs`` (and ``definitions``) are hoisted to the root's ``$defs``, renamed
    ``<tool>__<name>`` where two tools define one name, and every local ``$ref`` is
    rewritten to where its target now lives: engines resolve ``#/$defs/...`` from the
    schema they are given, not from the tool's own root.
    """
    defs: dict[str, Any] = {}
    calls = []
    for index, tool in enumerate(tools):
        at = "/properties/arguments" if len(tools) == 1 else f"/anyOf/{index}/properties/arguments"
        calls.append({
            "type": "object",
            "properties": {"name": {"const": tool.name},
                           "arguments": _hoisted(tool.name, tool.parameters, at, defs)},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        })
    schema = calls[0] if len(calls) == 1 else {"anyOf": calls}
    return {**schema, "$defs": defs} if defs else schema


_DEFINITION_KEYS = ("$defs", "definitions")
_DATA_KEYS = frozenset({"const", "enum", "default", "examples", "example"})
"""Keywords whose values are data, not schemas: a ``$ref`` inside them is not a reference."""
_NAMED_SCHEMAS = frozenset({"properties", "patternProperties", "dependentSchemas",
                            *_DEFINITION_KEYS})
"""Keywords whose values map names (any name, "const" too) to schemas."""


def _hoisted(tool: str, parameters: Mapping[str, Any], at: str,
             defs: dict[str, Any]) -> dict[str, Any]:
    """``parameters`` without their root definitions (moved into ``defs``) and with their
    local references rewritten for a schema that embeds them at the pointer ``at``."""
    renamed: dict[tuple[str, str], str] = {}
    for key in _DEFINITION_KEYS:
        for name in parameters.get(key) or {}:
            new = name if name not in defs and name not in renamed.values() else \
                f"{tool}__{name}"
            while new in defs or new in renamed.values():
                new += "_"
            renamed[(key, name)] = new

    def pointer(ref: str) -> str:
        parts = ref[2:].split("/") if ref.startswith("#/") else []
        if len(parts) >= 2 and parts[0] in _DEFINITION_KEYS:
            name = parts[1].replace("~1", "/").replace("~0", "~")
            if (parts[0], name) in renamed:
                new = renamed[(parts[0], name)].replace("~", "~0").replace("/", "~1")
                return "/".join(["#/$defs", new, *parts[2:]])
        return "#" + at + ref[1:] if ref.startswith("#") else ref

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, Mapping):
            return node
        return {key: (pointer(value) if key == "$ref" and isinstance(value, str) else
                      value if key in _DATA_KEYS else
                      {name: rewrite(sub) for name, sub in value.items()}
                      if key in _NAMED_SCHEMAS and isinstance(value, Mapping) else
                      rewrite(value))
                for key, value in node.items()}

    for (key, name), new in renamed.items():
        defs[new] = rewrite(parameters[key][name])
    return rewrite({key: value for key, value in parameters.items()
                    if key not in _DEFINITION_KEYS or not isinstance(value, Mapping)})


@dataclass(frozen=True)
class ResponseFormat:
    """What the answer must be: any JSON object (``schema`` None) or JSON for a schema.

    ``model`` keeps a pydantic class the schema came from, so the answer can be parsed
    back into it.
    """

    schema: Mapping[str, Any] | None = None
    model: Any = None

    @property
    def key(self) -> str:
        """A stable text key of the constraint (for grammar caches)."""
        return json.dumps(self.schema, sort_keys=True) if self.schema is not None else "json"


ToolChoice = Literal["auto", "none", "required"] | str


def coerce_tools(tools: Sequence[ToolSpec | Mapping[str, Any]] | None) -> list[ToolSpec]:
    """Validate a tool list; names must be unique."""
    if tools is None:
        return []
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
        raise InvalidInputTypeError(f"tools must be a list, got {type(tools).__name__}")
    specs = [ToolSpec.coerce(t) for t in tools]
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidRequestError(f"tool names must be unique; repeated: {duplicates}")
    return specs


def coerce_tool_choice(choice: Any, tools: Sequence[ToolSpec]) -> str | None:
    """Normalize ``tool_choice`` to "auto", "none", "required" or a tool name (None = no tools).

    The one reader of every dialect's ``tool_choice``: "any" (LangChain, Anthropic) and
    True mean "required"; a tool is named as OpenAI's chat API writes it
    (``{"type": "function", "function": {"name": ...}}``), as its Responses API does
    (``{"type": "function", "name": ...}``) or as Anthropic's does
    (``{"type": "tool", "name": ...}``); Anthropic's ``{"type": "auto" | "any" | "none"}``
    name a mode.

    Example:
        >>> weather = ToolSpec(name="get_weather", parameters={"type": "object"})
        >>> coerce_tool_choice({"type": "tool", "name": "get_weather"}, [weather])
        'get_weather'
        >>> coerce_tool_choice("any", [weather]), coerce_tool_choice(None, [weather])
        ('required', 'auto')
    """
    names = [t.name for t in tools]
    if isinstance(choice, Mapping):
        choice = _choice_in_mapping(choice)
    if choice is True:
        choice = "required"
    if choice is None or choice is False:
        choice = "auto" if tools and choice is None else "none"
    if not isinstance(choice, str):
        raise InvalidInputTypeError(
            f"tool_choice must be 'auto', 'none', 'required', 'any' or a tool name, got "
            f"{choice!r}", param="tool_choice")
    choice = {"any": "required"}.get(choice, choice)
    if choice in ("auto", "none"):
        return choice if tools else None
    if not tools:
        raise InvalidRequestError(f"tool_choice={choice!r} needs tools; pass tools=[...] too",
                                  param="tool_choice")
    if choice == "required" or choice in names:
        return choice
    raise InvalidRequestError(
        f"tool_choice names the unknown tool {choice!r}; the tools are: {', '.join(names)}",
        param="tool_choice")


_CHOICE_SHAPES = ('{"type": "function", "function": {"name": "<tool>"}} (OpenAI chat), '
                  '{"type": "function", "name": "<tool>"} (OpenAI Responses), '
                  '{"type": "tool", "name": "<tool>"} or {"type": "auto" | "any" | "none"} '
                  '(Anthropic)')


def _choice_in_mapping(choice: Mapping[str, Any]) -> str:
    """The mode or tool name a ``tool_choice`` object names (see ``coerce_tool_choice``)."""
    kind = choice.get("type")
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
    if kind in ("function", "tool", None) and isinstance(name, str) and name:
        return name
    if kind in ("auto", "any", "none", "required") and name is None and function is None:
        return kind
    raise InvalidRequestError(
        f"tool_choice {dict(choice)!r} names no mode or tool; write one of {_CHOICE_SHAPES}",
        param="tool_choice")


def coerce_response_format(value: Any) -> ResponseFormat | None:
    """Accept None, "json", a JSON schema dict, OpenAI's ``{"type": "json_object"}`` /
    ``{"type": "json_schema", "json_schema": {"schema": ...}}``, or a pydantic model class."""
    if value is None or isinstance(value, ResponseFormat):
        return value
    if isinstance(value, str):
        if value.lower() in ("json", "json_object"):
            return ResponseFormat()
        raise InvalidRequestError(
            f"response_format {value!r} is not known; use 'json', a JSON schema, or a "
            "pydantic model class"
        )
    if isinstance(value, type) and hasattr(value, "model_json_schema"):
        return ResponseFormat(schema=_checked(value.model_json_schema()), model=value)
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "json_object":
            return ResponseFormat()
        if kind == "json_schema" and isinstance(value.get("json_schema"), Mapping):
            return ResponseFormat(schema=_checked(value["json_schema"].get("schema") or {}))
        return ResponseFormat(schema=_checked(value))
    raise InvalidInputTypeError(
        "response_format must be None, 'json', a JSON schema dict or a pydantic model class, "
        f"got {type(value).__name__}"
    )


def _checked(schema: Any) -> dict[str, Any]:
    check_json_schema(schema, what="the response_format schema", param="response_format")
    return dict(schema)


def check_json_schema(schema: Any, *, what: str, param: str | None = None) -> None:
    """Raise ``InvalidRequestError`` naming ``what`` when ``schema`` is not a valid schema
    object (``true``, ``5``, ``"json"``: JSON Schema allows boolean schemas, but no
    engine's structured output takes one)."""
    import jsonschema

    if not isinstance(schema, Mapping):
        shown = json.dumps(schema) if isinstance(schema, (bool, int, float, str, list,
                                                           type(None))) else repr(schema)
        raise InvalidRequestError(f"{what} must be a JSON schema object, such as "
                                  f'{{"type": "object", ...}}, got {shown[:60]}', param=param)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        raise InvalidRequestError(f"{what} is not a valid JSON schema: {error.message}",
                                  param=param) from None


def new_tool_call_id() -> str:
    """A fresh id for a tool call, like ``call_3f9a1c0d2b7e``."""
    return f"call_{uuid.uuid4().hex[:12]}"


def generic_tool_prompt(tools: Sequence[ToolSpec], choice: str | None) -> str:
    """Tool instructions for chat templates that have no tool support of their own.

    It asks for the Hermes/Qwen format that ``core.output`` parses, so every model is
    read the same way.
    """
    listing = "\n".join(json.dumps(t.to_openai(), ensure_ascii=False) for t in tools)
    must = {
        "required": "You must call at least one function.",
        "auto": "Call a function only when it helps; otherwise answer directly.",
    }.get(choice or "auto", f"You must call the function {choice}.")
    return (
        "You can call functions. They are described in JSON inside <tools></tools>:\n"
        f"<tools>\n{listing}\n</tools>\n"
        f"{must} To call a function, reply with one block per call:\n"
        f'{TOOL_CALL_OPEN}\n{{"name": "<function-name>", "arguments": {{...}}}}\n'
        f"{TOOL_CALL_CLOSE}"
    )


# Numbers with no bounds let a small model write digits forever under greedy decoding;
# grammars get these bounds (outputs stay valid for the caller's schema: they are a subset).
_NUMBER_BOUND = 10**15 - 1


def bounded_for_generation(schema: Any) -> Any:
    """A copy of ``schema`` in which every number without bounds gets +/- 10^15 ones."""
    if isinstance(schema, list):
        return [bounded_for_generation(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    bounded = {key: bounded_for_generation(value) for key, value in schema.items()}
    if bounded.get("type") in ("integer", "number") and not ({"enum", "const"} & set(bounded)):
        if "minimum" not in bounded and "exclusiveMinimum" not in bounded:
            bounded["minimum"] = -_NUMBER_BOUND
        if "maximum" not in bounded and "exclusiveMaximum" not in bounded:
            bounded["maximum"] = _NUMBER_BOUND
    return bounded
