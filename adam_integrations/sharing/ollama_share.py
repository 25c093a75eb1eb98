"""Putting a GGUF that is already on disk into Ollama's store without a second copy.

The GGUF becomes Ollama's model blob as a hardlink (same inode, zero extra bytes); where a
hardlink cannot be made (another file system) a reflink, then a symlink; a real copy only
when the caller allows it (``allow_copy``), and the result says which. Then the small
blobs (chat template as Ollama's Go template, parameters with the stop tokens, license)
and the config blob are written, and the manifest last, so an interrupted share leaves
both stores valid: Ollama only sees a model once its manifest exists, and every file is
written to a temporary name and renamed into place.

Safety: names and digests are validated (``OllamaName``); the GGUF's sha256 is verified
before linking; an existing blob is reused only when its content has the same digest;
an existing manifest for the name is never overwritten unless it already describes the
same model; nothing this module did not create is deleted or replaced (the one thing
replaced is a blob link left dangling by an earlier share, whose original moved:
``ShareResult.repaired`` says so).

Do not use Ollama's ``/api/create`` for this: Ollama >= 0.30 rewrites the GGUF it is
given (a new digest and double the disk use).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from adam_integrations.catalog.qwen3 import is_qwen3_family, sampling_preset
from adam_integrations.core.atomic import partial_file, sweep_stale_partials, write_atomically
from adam_integrations.core.errors import AdamError, AlreadyExistsError, InvalidRequestError
from adam_integrations.core.stores.gguf_header import read_gguf_header
from adam_integrations.core.stores.ollama_store import (
    ADAPTER_MEDIA_TYPE,
    MODEL_MEDIA_TYPE,
    OllamaName,
    ollama_store_roots,
)
from adam_integrations.sharing.digest import file_sha256

LinkKind = Literal["existing", "hardlink", "reflink", "symlink", "copy"]
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"

# Ollama Go templates for the chat formats we recognise in a GGUF's Jinja template.
CHATML_TEMPLATE = (
    "{{- range $i, $_ := .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n"
)
LLAMA3_TEMPLATE = (
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
    "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
)
GENERIC_TEMPLATE = "{{ .Prompt }}"

# Qwen3's official chat template as an Ollama Go template: tools in the system turn, calls
# as <tool_call> JSON, tool results as <tool_response> in a user turn, reasoning kept only
# after the last user query (the official last_query_index rule), and think=false as the
# empty think block enable_thinking=false writes. Ollama keeps reasoning in .Thinking, so
# no think block is parsed out of .Content here. Checked against the official template by
# rendering both (tests/integration/test_qwen3_ollama.py, with Go's text/template).
QWEN3_TEMPLATE = (
    '{{ $first := "" }}{{ if .Messages }}{{ $first = (index .Messages 0).Role }}{{ end }}'
    '{{ $lastQuery := -1 }}{{ range $i, $m := .Messages }}'
    '{{ if eq $m.Role "user" }}{{ $lastQuery = $i }}{{ end }}{{ end }}'
    '{{ if .Tools }}<|im_start|>system\n'
    '{{ if eq $first "system" }}{{ (index .Messages 0).Content }}\n\n{{ end }}'
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
    "{{ range .Tools }}\n{{ . }}{{ end }}"
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
    '{{ else if eq $first "system" }}<|im_start|>system\n'
    "{{ (index .Messages 0).Content }}<|im_end|>\n{{ end }}"
    '{{ $lastRole := "" }}{{ range $i, $m := .Messages }}'
    '{{ $last := eq (len (slice $.Messages $i)) 1 }}'
    '{{ if or (eq .Role "user") (and (eq .Role "system") (ne $i 0)) }}'
    "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
    '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n'
    "{{ if and (gt $i $lastQuery) (or $last .Thinking) }}"
    "<think>\n{{ .Thinking }}\n</think>\n\n{{ end }}{{ .Content }}"
    "{{ range $j, $call := .ToolCalls }}{{ if or $j $m.Content }}\n{{ end }}"
    '<tool_call>\n{"name": "{{ $call.Function.Name }}", "arguments": '
    "{{ $call.Function.Arguments }}}\n</tool_call>{{ end }}<|im_end|>\n"
    '{{ else if eq .Role "tool" }}{{ if ne $lastRole "tool" }}<|im_start|>user{{ end }}'
    "\n<tool_response>\n{{ .Content }}\n</tool_response>"
    '{{ if or $last (ne (index (slice $.Messages $i) 1).Role "tool") }}<|im_end|>\n{{ end }}'
    "{{ end }}{{ $lastRole = .Role }}{{ end }}"
    '{{ if ne $lastRole "assistant" }}<|im_start|>assistant\n'
    "{{ if and .IsThinkSet (not .Think) }}<think>\n\n</think>\n\n{{ end }}{{ end }}"
)


@dataclass(frozen=True)
class ShareResult:
    """What sharing did: the name, the model blob, and how it got there."""

    name: str
    manifest: Path
    blob: Path
    link: LinkKind
    extra_bytes: int  # bytes written for the weights (0 unless copied)
    repaired: str = ""  # what was wrong with the store's blob and has been put right


def go_template(jinja: str | None) -> tuple[str, list[str]]:
    """The Ollama template and stop tokens for a GGUF's Jinja chat template.

    Example:
        >>> go_template("{{ '<|im_start|>' + m['role'] }}")[1]
        ['<|im_start|>', '<|im_end|>']
    """
    text = jinja or ""
    if "<|im_start|>" in text and "<tool_call>" in text and "<think>" in text:
        return QWEN3_TEMPLATE, ["<|im_start|>", "<|im_end|>"]
    if "<|im_start|>" in text:
        return CHATML_TEMPLATE, ["<|im_start|>", "<|im_end|>"]
    if "<|start_header_id|>" in text:
        return LLAMA3_TEMPLATE, ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    return GENERIC_TEMPLATE, []


def ollama_parameters(architecture: str | None, stops: list[str]) -> dict[str, Any]:
    """The params blob: the stop tokens, and for Qwen3 the Qwen team's (thinking-mode)
    sampling with no repeat penalty, as Ollama's own qwen3 models carry."""
    parameters: dict[str, Any] = {"stop": stops} if stops else {}
    if is_qwen3_family(architecture):
        parameters.update(sampling_preset(thinking=True))
        parameters.pop("min_p", None)
        parameters["repeat_penalty"] = 1.0
    return parameters


@dataclass(frozen=True)
class ModelSpec:
    """What a model in Ollama's store holds beside its weights: a Modelfile's directives.
    Unset fields are derived from the GGUF (the Go template and stop tokens from its chat
    template, Qwen3's sampling, its license)."""

    system: str | None = None
    template: str | None = None
    """Ollama's Go template."""
    chat_template: str | None = None
    """A Jinja chat template this package runs the model with (a layer Ollama ignores)."""
    parameters: dict[str, Any] | None = None
    """Over the parameters derived from the GGUF (its stop tokens, Qwen3's sampling)."""
    messages: list[dict[str, Any]] | None = None
    license: str | None = None
    adapters: list[Path] | None = None
    """GGUF LoRA adapters (a Modelfile's ADAPTER lines), stored as adapter layers."""
    created: bool = False
    """Made by ``adam create`` / ``/api/create``: such a model may be deleted again."""


def share_gguf(gguf: str | os.PathLike[str], name: str, *, root: Path | None = None,
               allow_copy: bool = False, license_text: str = "") -> ShareResult:
    """Make the GGUF at ``gguf`` the Ollama model ``name`` (see the module docstring)."""
    return write_model(gguf, name, ModelSpec(license=license_text or None), root=root,
                       allow_copy=allow_copy)


def write_model(gguf: str | os.PathLike[str], name: str, spec: ModelSpec, *,
                root: Path | None = None, allow_copy: bool = False, replace: bool = False,
                overwrite: bool = False,
                report: Callable[[str], None] = lambda status: None) -> ShareResult:
    """Write the model ``name`` into Ollama's store: the GGUF as its model blob (linked,
    see ``_place_blob``), the layers of ``spec``, the config, the manifest last.
    ``replace``: a manifest already there for another model is replaced (as Ollama's
    create does) instead of refused, when adam made that model; one made by anyone else
    (``ollama pull``, ``ollama create``) only with ``overwrite`` too. ``report`` hears
    each step, as Ollama's status lines say them."""
    source = Path(gguf).resolve()
    parsed = OllamaName.parse(name)
    store = root or ollama_store_roots()[0]
    path = store / "manifests" / parsed.host / parsed.namespace / parsed.model / parsed.tag
    if replace and not overwrite and path.exists() and not made_by_adam(path, store):
        raise AlreadyExistsError(
            f"Ollama's store already has a model {str(parsed)!r} that adam did not make (it "
            "came from `ollama pull` or `ollama create`), so it is left as it is; choose "
            f"another name, remove it with `ollama rm {parsed}`, or replace it on purpose "
            "(adam create --overwrite, or \"overwrite\": true on /api/create)",
            param="model")
    header = read_gguf_header(source)  # refuses what is not a whole GGUF
    digest = file_sha256(source)
    blobs = store / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    blob = blobs / f"sha256-{digest}"
    repaired = ""
    if blob.is_symlink() and not blob.exists():  # an earlier share's original moved
        repaired = (f"the store's blob linked to {os.readlink(blob)}, which no longer exists "
                    f"(the file was moved or deleted); it now links to {source}")
    report(f"{'using existing' if blob.exists() else 'creating new'} layer sha256:{digest}")
    link = _place_blob(source, blob, digest, allow_copy)

    derived_template, stops = go_template(header.metadata.get("tokenizer.chat_template"))
    parameters = {**ollama_parameters(header.architecture, stops), **(spec.parameters or {})}
    license_text = spec.license or str(header.metadata.get("general.license") or "")
    layers = [_layer(MODEL_MEDIA_TYPE, digest, source.stat().st_size)]
    for adapter in spec.adapters or []:  # small files: stored as blobs of their own
        layers.append(_write_blob(blobs, ADAPTER_MEDIA_TYPE, Path(adapter).read_bytes()))
        report(f"using layer {layers[-1]['digest']} (adapter)")
    for media_type, value in (
            ("application/vnd.ollama.image.template", spec.template or derived_template),
            ("application/vnd.adam.image.chat_template", spec.chat_template),
            ("application/vnd.ollama.image.system", spec.system),
            ("application/vnd.ollama.image.params",
             json.dumps(parameters) if parameters else None),
            ("application/vnd.ollama.image.messages",
             json.dumps(spec.messages) if spec.messages else None),
            ("application/vnd.ollama.image.license", license_text or None)):
        if value:
            layers.append(_write_blob(blobs, media_type, value.encode()))
            report(f"using layer {layers[-1]['digest']} ({media_type.rsplit('.', 1)[-1]})")
    architecture = header.architecture or "unknown"
    config = {
        "model_format": "gguf", "model_family": architecture,
        "model_families": [architecture], "model_type": _size_label(header),
        "file_type": header.quantization or "unknown", "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest}"]},
        **({"adam_created": True} if spec.created else {}),
    }
    config_layer = _write_blob(blobs, CONFIG_MEDIA_TYPE, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
                "config": config_layer, "layers": layers}
    report("writing manifest")
    if replace:
        _atomic_write(path, json.dumps(manifest).encode())
    else:
        _write_manifest(path, manifest, digest)
    return ShareResult(str(parsed), path, blob, link,
                       source.stat().st_size if link == "copy" else 0, repaired)


def made_by_adam(manifest: Path, store: Path) -> bool:
    """Whether the model of ``manifest`` (in ``store``) was made by ``adam create`` or
    ``/api/create``: its config blob says ``adam_created``. An unreadable one was not."""
    try:
        digest = json.loads(manifest.read_text(encoding="utf-8"))["config"]["digest"]
        config = json.loads((store / "blobs" / str(digest).replace(":", "-")).read_text(
            encoding="utf-8"))
        return isinstance(config, dict) and config.get("adam_created") is True
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def default_ollama_name(source: Any) -> str:
    """An Ollama name for a GGUF: its file stem, lower-case, tag ``latest`` (a
    quantization in the name becomes the tag: ``smol-Q4_1.gguf`` -> ``smol:q4_1``)."""
    import re

    stem = Path(source.location).stem if source.kind == "gguf" else str(source.name)
    if stem.startswith("sha256-"):  # an Ollama blob already
        stem = str(source.name)
    stem = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-.") or "model"
    match = re.search(r"[-.](q\d[a-z0-9_]*|f16|bf16)$", stem)
    if match:
        return f"{stem[: match.start()]}:{match.group(1)}"
    return f"{stem}:latest"


def _place_blob(source: Path, blob: Path, digest: str, allow_copy: bool) -> LinkKind:
    """Put ``source`` at ``blob`` (a dangling link there, from an earlier share whose
    original moved, is replaced: the store owns the link, and the content is verified)."""
    if blob.exists():
        if file_sha256(blob) != digest:
            raise AdamError(
                f"Ollama's store already has {blob.name} with different content (a corrupt "
                "blob); remove it with `ollama rm` of its model, then share again")
        return "existing"
    sweep_stale_partials(blob.parent)
    temporary = partial_file(blob)  # a name nobody can predict or plant a link at
    try:
        temporary.unlink()  # the name is ours; each way below creates it exclusively
        kind = _linked(source, temporary, allow_copy)
        os.replace(temporary, blob)
        return kind
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _linked(source: Path, target: Path, allow_copy: bool) -> LinkKind:
    """``source`` at the free name ``target``: a hardlink, else a reflink, else a symlink,
    else (when allowed) a copy. Each creates ``target`` exclusively (never through
    anything found there)."""
    with contextlib.suppress(OSError):
        os.link(source, target)
        return "hardlink"
    with contextlib.suppress(OSError):
        copy_exclusively(source, target, reflink=True)
        return "reflink"
    with contextlib.suppress(OSError):
        os.symlink(source, target)
        return "symlink"
    if not allow_copy:
        raise AdamError(
            f"{source} cannot be linked into Ollama's store at {target.parent} (another "
            "file system that allows neither hardlinks, reflinks nor symlinks); pass "
            "allow_copy=True (adam share --copy) to copy it, which uses the disk twice")
    copy_exclusively(source, target, reflink=False)
    return "copy"


def copy_exclusively(source: Path, target: Path, *, reflink: bool) -> None:
    """Copy ``source`` to a new file ``target`` (mode 0644, Ollama reads it), sharing its
    blocks (Linux ``FICLONE``) when ``reflink``; nothing is left at ``target`` on failure."""
    import fcntl

    handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(handle, "wb") as dst, open(source, "rb") as src:
            if reflink:
                fcntl.ioctl(dst.fileno(), 0x40049409, src.fileno())  # FICLONE
            else:
                shutil.copyfileobj(src, dst, 16 * 1024 * 1024)
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise


def _layer(media_type: str, digest: str, size: int) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": size}


def _write_blob(blobs: Path, media_type: str, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    path = blobs / f"sha256-{digest}"
    if not path.exists():
        _atomic_write(path, data)
    return _layer(media_type, digest, len(data))


def _write_manifest(path: Path, manifest: dict[str, Any], model_digest: str) -> None:
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
            same = any(layer.get("digest") == f"sha256:{model_digest}"
                       for layer in existing.get("layers", []))
        except (OSError, ValueError, AttributeError):
            same = False
        if not same:
            raise InvalidRequestError(
                f"Ollama already has a different model under this name ({path}); choose "
                "another name (adam share --name ...)")
    _atomic_write(path, json.dumps(manifest).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    write_atomically(path, data, mode=0o644)  # Ollama, another user's process, reads it


def _size_label(header: Any) -> str:
    count = header.metadata.get("general.size_label") or ""
    return str(count)
