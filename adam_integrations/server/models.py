"""Which models ``adam serve`` serves, under which names.

A request's ``model`` is any model reference this package understands (``smollm2``,
``hf:Qwen/Qwen3-0.6B``, ``qwen3_small``, ``/models/x.gguf``, ``ollama:qwen3``...), an
Ollama-style name (``smollm2:135m``; ``name:latest`` is the same as ``name``), or an alias
made with ``/api/copy``, or a name the operator gave a model with ``adam serve --model
NAME=REFERENCE`` (the one way to serve a model on another server, e.g.
``--model qwen3-32b=vllm:Qwen/Qwen3-32B@http://gpu-box:8000/v1``: requests can never name
a URL themselves), or a LoRA adapter's name (``adam serve --lora NAME=PATH``, vLLM's
convention: the adapter is served as a model of its own, on every route; its base is the
one ``--model``, else the base the adapter names; several adapters share the base's one
copy in memory, and a request naming the base gets it without them); every name is
checked first (``server.names``: Ollama's name
rules, no traversal, paths only under ``--models-dir``). The embedded models are listed
under readable names.
Aliases live in ``<ADAM_CACHE_DIR>/server-aliases.json`` (written atomically; at most
``MAX_ALIASES``); deleting removes an alias, never a model file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adam_integrations.catalog.embedded import EMBEDDED_CHAT, EMBEDDED_EMBEDDING
from adam_integrations.catalog.names import resolve_reference
from adam_integrations.core.atomic import write_atomically
from adam_integrations.core.backend import ModelBackend
from adam_integrations.core.errors import InvalidRequestError, ModelNotFoundError
from adam_integrations.core.paths import cache_root
from adam_integrations.core.registry import AUTO, accepted_options, registry
from adam_integrations.core.stores.ollama_parameters import DEFAULT_OPTIONS, config_fields
from adam_integrations.core.stores.ollama_store import list_store_models
from adam_integrations.core.types import ModelSource
from adam_integrations.manager import shared_backend
from adam_integrations.served import ServedModel, stored_layers
from adam_integrations.server.names import (
    canonical_name,
    check_alias,
    check_model_name,
    is_path_reference,
)
from adam_integrations.sharing.ollama_create import delete_created_model

MAX_ALIASES = 1000
"""Names ``/api/copy`` may create on one server (each is kept in the aliases file, which
every copy rewrites): a client cannot grow it without bound."""

DEFAULT_KEEP_ALIVE = 300.0
"""Seconds a served model stays loaded after a request that names no ``keep_alive``
(Ollama's default, on every route)."""

ENGINE_DEFAULTS = config_fields(DEFAULT_OPTIONS)
"""What ``adam serve`` samples with where neither the request nor the model says
(Ollama's defaults, on every route; ``served.ServedModel``'s last step)."""

# Readable names for the embedded models, as `ollama list` would show them.
EMBEDDED_NAMES = {"smollm2:135m": EMBEDDED_CHAT, "all-minilm:l6-v2": EMBEDDED_EMBEDDING}


def _resolve_served(reference: str) -> ModelSource | None:
    """A served name as a model source: this package's reference grammar first, then a
    model of the local Ollama store under that name; None when neither knows it."""
    if is_path_reference(reference):
        return resolve_reference(reference)  # checked: under a folder the operator allowed
    for candidate in (reference, f"ollama:{reference}"):
        try:
            source = resolve_reference(candidate, local_paths=False)
        except (ModelNotFoundError, InvalidRequestError):
            continue
        if source.kind != "ollama":  # a served model must be on this machine
            return source
    return None


class ServedModels:
    """Served names to ``ServedModel`` objects, created on first request (their backends
    are shared with every ModelManager in the process naming the same model,
    ``core.loaded``).

    ``model_type`` is the backend every model is served on ("auto": the automatic
    choice for each model, ``core.registry``)."""

    def __init__(self, aliases_file: Path | None = None, model_type: str = AUTO,
                 model_dirs: Sequence[Path] = (), named: Mapping[str, str] | None = None,
                 backend_options: Mapping[str, Any] | None = None,
                 loras: Mapping[str, str] | None = None) -> None:
        self._model_dirs = tuple(Path(d) for d in model_dirs)
        self._named = {self.normalize(check_alias(k)): v for k, v in (named or {}).items()}
        self._loras: dict[str, tuple[str, int]] = {}
        """An adapter's served name: its base's reference and its index there."""
        self._base_adapters: dict[tuple[str, str], list[Path]] = {}
        """A base model (source kind and location): the adapters it is loaded with."""
        self._aliases_file = aliases_file or cache_root() / "server-aliases.json"
        if model_type.lower() != AUTO:
            registry.get(model_type)  # an unknown backend fails at start, not per request
        self._model_type = model_type
        self._backend_options = dict(backend_options or {})  # e.g. n_threads, to the
        # backends that take them (adam serve --threads)
        self._aliases: dict[str, str] = self._read_aliases()
        self._served: dict[str, ServedModel] = {}
        self._last_names: dict[int, str] = {}
        self._lock = threading.Lock()
        for name, path in (loras or {}).items():
            self._add_lora(name, path)

    # -- names -----------------------------------------------------------------------
    def normalize(self, name: object) -> str:
        """The name, checked (``server.names``), as a key: ``:latest`` dropped."""
        text = check_model_name(name, self._model_dirs)
        return text[: -len(":latest")] if text.lower().endswith(":latest") else text

    def reference(self, name: str) -> str:
        """The model reference a served name stands for."""
        key = self.normalize(name)
        for table in (self._named, self._aliases,
                      {k: str(v.name) for k, v in EMBEDDED_NAMES.items()}):
            for alias, target in table.items():
                if alias.lower() == key.lower():
                    return target
        return key

    def get(self, name: str, *, embedding: bool = False) -> ServedModel:
        """The served model for ``name``; raises ModelNotFoundError (a 404) when no model
        has that name."""
        key = f"{'embed' if embedding else 'chat'}|{self.normalize(name).lower()}"
        with self._lock:
            if key not in self._served:
                lora = self._loras.get(self.normalize(name).lower())
                base = lora[0] if lora else name
                source = self._source(base)
                choice = registry.choose(self._model_type, source)
                layers = stored_layers(source)
                stored = list(layers.adapters)  # a created model's ADAPTER lines
                served_loras = self._base_adapters.get((source.kind, source.location), [])
                adapters = [*stored, *served_loras]
                options = accepted_options(choice.backend_class, {
                    **self._backend_options,
                    **({"chat_template": layers.chat_template} if layers.chat_template
                       else {}), **({"adapters": adapters} if adapters else {})})
                explanation = f"{source.explanation}; on {choice.backend_class.name}: " \
                              f"{choice.reason}"
                own = tuple((index, 1.0) for index in range(len(stored)))
                if lora:
                    explanation = f"the LoRA adapter {served_loras[lora[1]]} on " \
                                  f"{base} ({explanation})"
                self._served[key] = ServedModel(
                    canonical_name(name), shared_backend(source, choice, options),
                    explanation, layers, engine_defaults=ENGINE_DEFAULTS,
                    keep_alive=DEFAULT_KEEP_ALIVE,
                    lora=(*own, (len(stored) + lora[1], 1.0)) if lora else
                    (own if served_loras else None))
            served = self._served[key]
            self._last_names[id(served.backend)] = canonical_name(name)
            return served

    def _source(self, name: str) -> ModelSource:
        reference = self.reference(name)
        source = (resolve_reference(reference) if self._operator_named(name)
                  else _resolve_served(reference))
        if source is None:
            raise ModelNotFoundError(f'model "{name}" not found, try pulling it first')
        return source

    def _add_lora(self, name: str, path: str) -> None:
        """Serve the adapter at ``path`` as ``name``, checked now (it exists, and fits its
        base when that is a GGUF): a wrong adapter fails at start, naming it."""
        from adam_integrations.core.adapters import coerce_adapters

        key = self.normalize(check_alias(name)).lower()
        (adapter,) = coerce_adapters([path], must_exist=True)
        base = self._lora_base(name, adapter.path)
        try:
            source = self._source(base)
        except ModelNotFoundError:
            raise InvalidRequestError(f"--lora {name}: its base model {base!r} is not on "
                                      "this machine; serve it with --model NAME=REFERENCE")\
                from None
        if source.kind == "gguf":
            from adam_integrations.core.stores.gguf_header import read_gguf_header
            from adam_integrations.sharing.adapter_gguf import adapter_for_gguf

            adapter_for_gguf(adapter.path, read_gguf_header(source.location), source.location)
        listed = self._base_adapters.setdefault((source.kind, source.location), [])
        self._loras[key] = (base, len(listed))
        listed.append(adapter.path)

    def _lora_base(self, name: str, path: Path) -> str:
        """The model an adapter is served on: the one ``--model``, else the base it was
        trained on (``adam tune``'s record: the GGUF it came from, or the checkpoint;
        else PEFT's ``base_model_name_or_path``)."""
        if len(self._named) == 1:
            return next(iter(self._named))
        for record, keys in (("adam-tune.json", ("base_gguf", "base")),
                             ("adapter_config.json", ("base_model_name_or_path",))):
            try:
                data = json.loads((path / record).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for field_name in keys:
                if isinstance(data.get(field_name), str) and data[field_name]:
                    return data[field_name]
        raise InvalidRequestError(
            f"--lora {name}: {path} does not say which model it adapts; serve its base "
            "with one --model NAME=REFERENCE (the adapters then apply to it)")

    def name_of(self, backend: ModelBackend) -> str:
        """The name ``backend`` was last asked for, as Ollama writes names (``name:tag``)."""
        with self._lock:
            return self._last_names.get(id(backend), str(backend.source.name))

    def _operator_named(self, name: str) -> bool:
        key = self.normalize(name).lower()
        return any(k.lower() == key for k in self._named)

    def listed(self) -> list[tuple[str, ModelSource]]:
        """The models /api/tags lists, under their canonical names (``name:tag``): the
        operator's names, the embedded models, the local Ollama store's and the aliases."""
        return [(canonical_name(name), source) for name, source in self._listed()]

    def _listed(self) -> list[tuple[str, ModelSource]]:
        entries: list[tuple[str, ModelSource]] = []
        for name, target in sorted(self._named.items()):
            try:
                entries.append((name, resolve_reference(target)))
            except (ModelNotFoundError, InvalidRequestError):
                continue  # a reference that names nothing here is not listed
        for name, (base, _) in sorted(self._loras.items()):
            entries.append((name, self._source(base)))
        for name, model in EMBEDDED_NAMES.items():
            if model.path() is not None:
                entries.append((f"{name}", resolve_reference(model.name)))
        for stored in list_store_models():  # models in the local Ollama store
            try:
                entries.append((stored, resolve_reference(f"ollama:{stored}")))
            except (ModelNotFoundError, InvalidRequestError):
                continue  # a corrupt manifest is not listed
        for alias, target in sorted(self._aliases.items()):
            try:
                source = _resolve_served(target)  # as a request naming it finds it
            except (ModelNotFoundError, InvalidRequestError):
                source = None
            if source is not None:  # a target that went away is not listed
                entries.append((alias, source))
        return entries

    # -- aliases ---------------------------------------------------------------------
    def copy(self, source: str, destination: str) -> None:
        """Make ``destination`` a name for the model ``source`` names."""
        target = self.reference(source)
        if _resolve_served(target) is None:
            raise ModelNotFoundError(f'model "{source}" not found, try pulling it first')
        key = self.normalize(check_alias(destination))
        if key.lower() in {n.lower() for n in EMBEDDED_NAMES}:
            raise InvalidRequestError(f"'{destination}' is the name of an embedded model")
        with self._lock:
            if key not in self._aliases and len(self._aliases) >= MAX_ALIASES:
                raise InvalidRequestError(
                    f"this server already has {len(self._aliases)} names made with "
                    f"/api/copy, its limit; remove some with /api/delete first")
            self._aliases[key] = target
            self._write_aliases()

    def delete(self, name: str) -> None:
        """Remove the alias ``name``, or the model ``name`` that ``create`` made (its
        manifest; model files are never deleted, nor models others put in the store)."""
        key = self.normalize(name)
        with self._lock:
            match = next((a for a in self._aliases if a.lower() == key.lower()), None)
            if match is not None:
                del self._aliases[match]
                self._write_aliases()
        if match is None:
            delete_created_model(check_alias(name))
        self.forget(name)

    def forget(self, name: str) -> None:
        """Drop what is remembered of ``name`` (after it was created anew or deleted)."""
        key = self.normalize(name).lower()
        with self._lock:
            for served_key in [k for k in self._served if k.endswith(f"|{key}")]:
                del self._served[served_key]

    def _read_aliases(self) -> dict[str, str]:
        try:
            data = json.loads(self._aliases_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write_aliases(self) -> None:
        write_atomically(self._aliases_file, json.dumps(self._aliases, indent=2))
