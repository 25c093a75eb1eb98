"""The parameters of an Ollama model: ``options`` in a request, ``PARAMETER`` lines in a
Modelfile, the params layer in Ollama's store. One table of names for all three: which
``GenerationConfig`` field each sampling option is, the JSON type Ollama reads each as, and
Ollama's own defaults for those neither a request nor a model sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adam_integrations.core.errors import InvalidRequestError, ModelLoadError

# Ollama option -> GenerationConfig field, and the JSON type each must have.
OPTIONS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "num_predict": ("max_tokens", int),
    "temperature": ("temperature", (int, float)),
    "top_p": ("top_p", (int, float)),
    "top_k": ("top_k", int),
    "min_p": ("min_p", (int, float)),
    "seed": ("seed", int),
    "stop": ("stop", (list, str)),
    "repeat_penalty": ("repetition_penalty", (int, float)),
    "presence_penalty": ("presence_penalty", (int, float)),
    "frequency_penalty": ("frequency_penalty", (int, float)),
}


RUNNER_OPTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "num_ctx": int, "num_keep": int, "num_batch": int, "num_gpu": int, "main_gpu": int,
    "num_thread": int, "use_mmap": bool, "numa": bool, "low_vram": bool,
    "repeat_last_n": int, "typical_p": (int, float), "tfs_z": (int, float),
    "mirostat": int, "mirostat_eta": (int, float), "mirostat_tau": (int, float),
    "penalize_newline": bool}
"""Ollama's options that have no GenerationConfig field (its runner's own settings, and
samplers llama.cpp dropped), with the JSON type Ollama reads each as."""


DEFAULT_OPTIONS: dict[str, Any] = {"temperature": 0.8, "top_k": 40, "top_p": 0.9,
                                   "min_p": 0.0, "repeat_penalty": 1.1}
"""Ollama's values for the sampling options neither a request nor its model sets
(Ollama's docs/modelfile.md, "Valid parameters and values"): it samples by default."""


def config_fields(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Ollama options (a model's parameters) as GenerationConfig fields; the runner's own
    options (``num_ctx``...) have none and are left out. A parameter of the wrong type (a
    model made elsewhere) is a ModelLoadError: the model, not the request, is broken.

    Example:
        >>> config_fields({"temperature": 0.2, "stop": "END", "num_ctx": 4096})
        {'temperature': 0.2, 'stop': ['END']}
    """
    try:
        fields = option_fields(parameters, what="the model's parameter")
    except InvalidRequestError as error:
        raise ModelLoadError(f"{error}; create the model again with a valid PARAMETER "
                             "(adam create, or /api/create)") from None
    if isinstance(fields.get("stop"), str):
        fields["stop"] = [fields["stop"]]
    return fields


def option_fields(options: Mapping[str, Any], *, what: str = "option") -> dict[str, Any]:
    """Ollama options (a request's ``options``, a model's parameters) as GenerationConfig
    fields, each of the type Ollama reads it as (InvalidRequestError naming it, if not);
    the runner's own options are checked and left out, unknown ones ignored.

    Example:
        >>> option_fields({"num_predict": 8, "temperature": 0, "num_ctx": 4096})
        {'max_tokens': 8, 'temperature': 0.0}
        >>> option_fields({"stop": 5}, what="parameter")
        Traceback (most recent call last):
        ...
        adam_integrations.core.errors.InvalidRequestError: parameter "stop" must be of \
type array or string, got 5
    """
    fields: dict[str, Any] = {}
    for key, value in options.items():
        if value is None or (key not in OPTIONS and key not in RUNNER_OPTION_TYPES):
            continue
        kinds = OPTIONS[key][1] if key in OPTIONS else RUNNER_OPTION_TYPES[key]
        if isinstance(value, bool) != (kinds is bool) or not isinstance(value, kinds) or (
                isinstance(value, list) and not all(isinstance(v, str) for v in value)):
            raise InvalidRequestError(
                f"{what} \"{key}\" must be of type {_type_name(kinds)}, got {value!r}",
                param=key)
        if key not in OPTIONS or (key == "num_predict" and value < 0):
            continue  # num_predict -1 / -2: until the model stops or the context is full
        name = OPTIONS[key][0]
        if kinds == (int, float) and abs(value) < 1e300:
            value = float(value)  # larger ones are refused by GenerationConfig, by name
        fields[name] = value
    return fields


def _type_name(kinds: type | tuple[type, ...]) -> str:
    names = {int: "integer", float: "number", list: "array", str: "string", bool: "boolean"}
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))
