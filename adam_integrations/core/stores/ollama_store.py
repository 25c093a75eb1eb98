"""Reading Ollama's on-disk store: which GGUF blob a model name stands for.

Layout (as Ollama writes it): a root (``$OLLAMA_MODELS``, else
``~/.ollama/models``, or ``/usr/share/ollama/.ollama/models`` for Linux service installs)
holding ``manifests/<host>/<namespace>/<model>/<tag>`` (JSON) and ``blobs/sha256-<hex>``.
The manifest's layer of media type ``application/vnd.ollama.image.model`` is the GGUF.

Names are checked before they touch the file system: a name or digest that could leave
the store (``..``, absolute paths, digests that are not 64 hex characters) is refused.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adam_integrations.core.errors import InvalidRequestError, ModelNotFoundError

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
ADAPTER_MEDIA_TYPE = "application/vnd.ollama.image.adapter"
# Ollama's name rules (one grammar for the store and the server's name check): the host
# letters, digits, "_ - ." and a ":port"; the namespace 1-80 of letters, digits, "_ -";
# the model and the tag letters, digits, "_ - ." (at most 40 besides the dots); every part
# starts with a letter, digit or "_", and a dot is always followed by another character
# or ends the part (no ".."). A host comes only with a namespace: "a/b" is namespace/model.
# Each part is a folder or file name in the store, so none is longer than 255 characters.
_HOST = r"[A-Za-z0-9_](?:\.?[A-Za-z0-9_-]){0,120}\.?(?::[0-9]{1,5})?"  # a file name's length
_NAMESPACE = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}"
_PART = r"[A-Za-z0-9_](?:\.?[A-Za-z0-9_-]){0,39}\.?"
OLLAMA_NAME_PATTERN = rf"(?:(?:{_HOST}/)?{_NAMESPACE}/)?{_PART}(?::{_PART})?"
"""An Ollama model name, ``[[host/]namespace/]model[:tag]``, as one regex."""
_NAME = re.compile(rf"(?:(?:(?P<host>{_HOST})/)?(?P<namespace>{_NAMESPACE})/)?"
                   rf"(?P<model>{_PART})(?::(?P<tag>{_PART}))?")
_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")


@dataclass(frozen=True)
class OllamaName:
    """A model name split as Ollama stores it: host/namespace/model:tag."""

    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def parse(cls, name: str) -> OllamaName:
        """Parse ``qwen3``, ``qwen3:0.6b``, ``user/model:tag`` or ``hf.co/org/repo:Q4_K_M``.

        Example:
            >>> OllamaName.parse("qwen3:0.6b")
            OllamaName(host='registry.ollama.ai', namespace='library', model='qwen3', tag='0.6b')
        """
        text = name.strip()
        match = _NAME.fullmatch(text)
        if match is None or ".." in text:
            raise InvalidRequestError(
                f"{name!r} is not a valid Ollama model name; write it as 'model', "
                "'model:tag', 'namespace/model:tag' or 'hf.co/org/repo:tag'")
        return cls(match["host"] or DEFAULT_HOST, match["namespace"] or DEFAULT_NAMESPACE,
                   match["model"], match["tag"] or "latest")

    def __str__(self) -> str:
        prefix = "" if self.host == DEFAULT_HOST else f"{self.host}/"
        namespace = "" if (self.host, self.namespace) == (DEFAULT_HOST, DEFAULT_NAMESPACE) \
            else f"{self.namespace}/"
        return f"{prefix}{namespace}{self.model}:{self.tag}"


def ollama_store_roots() -> list[Path]:
    """Where Ollama keeps models on this machine, most specific first."""
    if os.environ.get("OLLAMA_MODELS"):
        return [Path(os.environ["OLLAMA_MODELS"]).expanduser()]
    return [Path.home() / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]


def find_manifest(name: str, roots: list[Path] | None = None) -> tuple[Path, Path] | None:
    """The store root and manifest file of the model ``name``, or None when no store
    holds it (the first root that does, as Ollama looks)."""
    parsed = OllamaName.parse(name)
    for root in roots if roots is not None else ollama_store_roots():
        manifest = root / "manifests" / parsed.host / parsed.namespace / parsed.model / parsed.tag
        if manifest.is_file():
            return root, manifest
    return None


def find_model_blob(name: str, roots: list[Path] | None = None) -> Path | None:
    """The GGUF blob of the model ``name`` in Ollama's store, or None when no store holds
    it. A manifest that is not valid JSON raises ``ModelNotFoundError`` naming the file."""
    found = find_manifest(name, roots)
    return _model_layer(*found) if found is not None else None


def _model_layer(root: Path, manifest: Path) -> Path:
    try:
        layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers") or []
    except (OSError, ValueError, AttributeError) as error:
        raise ModelNotFoundError(
            f"Ollama's manifest {manifest} cannot be read ({error}); `ollama pull` the model "
            "again to repair it") from error
    for layer in layers:
        if isinstance(layer, dict) and layer.get("mediaType") == MODEL_MEDIA_TYPE:
            match = _DIGEST.match(str(layer.get("digest", "")))
            if match is None:
                raise ModelNotFoundError(
                    f"Ollama's manifest {manifest} names a model blob with a malformed "
                    f"digest {layer.get('digest')!r}")
            blob = root / "blobs" / f"sha256-{match.group(1)}"
            if blob.is_symlink() and not blob.exists():
                raise ModelNotFoundError(
                    f"Ollama's blob {blob.name} (from {manifest}) links to "
                    f"{os.readlink(blob)}, which no longer exists: the shared file was moved "
                    "or deleted. Share it again from where it is now (adam share FILE "
                    "--name NAME) to repair the link")
            if not blob.is_file():
                raise ModelNotFoundError(
                    f"Ollama's manifest {manifest} names the blob {blob.name}, which is "
                    "missing; `ollama pull` the model again")
            return blob
    raise ModelNotFoundError(f"Ollama's manifest {manifest} has no model layer")


LAYER_MEDIA_TYPES = {
    "application/vnd.ollama.image.params": "parameters",
    "application/vnd.ollama.image.system": "system",
    "application/vnd.ollama.image.messages": "messages",
    "application/vnd.ollama.image.template": "template",
    "application/vnd.ollama.image.license": "license",
    ADAPTER_MEDIA_TYPE: "adapters",
    "application/vnd.adam.image.chat_template": "chat_template",
}
"""The small layers that say how a model answers, by the field of ``ModelLayers`` they
fill. The last is this package's own: the Jinja chat template a created model runs with
here (Ollama ignores layer types it does not know, and reads the Go ``template``)."""


@dataclass(frozen=True)
class ModelLayers:
    """What Ollama's store keeps beside a model's weights (a Modelfile's directives)."""

    parameters: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    template: str | None = None  # Ollama's Go template
    license: str | None = None
    chat_template: str | None = None  # the Jinja template this package runs, when given
    adapters: list[Path] = field(default_factory=list)
    """The LoRA adapters (GGUF blobs) a Modelfile's ADAPTER lines added."""


def model_layers(name: str, roots: list[Path] | None = None) -> ModelLayers:
    """The layers of the model ``name`` in Ollama's store (empty ones when it has none;
    a layer that cannot be read is left out rather than refusing the model)."""
    parsed = OllamaName.parse(name)
    for root in roots if roots is not None else ollama_store_roots():
        manifest = root / "manifests" / parsed.host / parsed.namespace / parsed.model / parsed.tag
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers") or []
        except (OSError, ValueError, AttributeError):
            continue
        found: dict[str, Any] = {}
        for layer in layers:
            kind = LAYER_MEDIA_TYPES.get(layer.get("mediaType")) if isinstance(
                layer, dict) else None
            match = _DIGEST.match(str(layer.get("digest", ""))) if kind else None
            if kind is None or match is None:
                continue
            if kind == "adapters":  # a GGUF, used where it lies
                blob = root / "blobs" / f"sha256-{match.group(1)}"
                if blob.is_file():
                    found.setdefault("adapters", []).append(blob)
                continue
            try:
                text = (root / "blobs" / f"sha256-{match.group(1)}").read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            found[kind] = _layer_value(kind, text, found.get(kind))
        return ModelLayers(**{k: v for k, v in found.items() if v is not None})
    return ModelLayers()


def _layer_value(kind: str, text: str, earlier: Any) -> Any:
    if kind in ("parameters", "messages"):
        try:
            value = json.loads(text)
        except ValueError:
            return earlier
        wanted = dict if kind == "parameters" else list
        return value if isinstance(value, wanted) else earlier
    if kind == "license" and earlier:  # a model may carry several licenses
        return f"{earlier}\n\n{text}"
    return text


def list_store_models(roots: list[Path] | None = None) -> list[str]:
    """The short names of every model in the local Ollama store(s) (no validation of the
    manifests: resolving a name does that)."""
    names: list[str] = []
    for root in roots if roots is not None else ollama_store_roots():
        manifests = root / "manifests"
        if not manifests.is_dir():
            continue
        for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
            parts = manifest.relative_to(manifests).parts
            if len(parts) == 4:
                host, namespace, model, tag = parts
                names.append(str(OllamaName(host, namespace, model, tag)))
    return names
