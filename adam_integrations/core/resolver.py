"""The model-reference grammar, and the resolver that turns a reference into a model source.

Every entry point (ModelManager, the CLI, the framework adapters and the server)
accepts the same model strings:

=============================  ==========================================================
``hf:<org>/<repo>``            a Hugging Face hub repository (local cache first)
``<org>/<repo>``               the same, without the prefix
``hf:<org>/<repo>:<quant>``    one GGUF of a GGUF repository, e.g. ``:Q4_K_M``
``hf.co/<org>/<repo>[:<q>]``   the same, as Ollama writes it
``ollama:<name>[:<tag>]``      a model in Ollama's store (its GGUF blob, used in place)
``openai:<model>[@<url>]``     a model on an OpenAI-compatible server (``<url>`` the base
                               URL, default ``OPENAI_BASE_URL``)
``vllm:<model>[@<url>]``       the same on vLLM (default http://127.0.0.1:8000/v1),
``sglang:``, ``llamacpp-server:``  SGLang (:30000/v1), llama.cpp's server (:8080/v1)
``./dir``, ``/abs/file.gguf``  a local model folder (``config.json``) or GGUF file
``~/models/x.gguf``            (``~`` is expanded)
``qwen3_small`` ...            a catalog alias (see ``catalog.qwen3``)
``smollm2``, ``all-minilm``    the embedded models by name
=============================  ==========================================================

Short names (catalog aliases, the embedded models) belong to the catalog, which sits
above this layer and passes its lookups to ``resolve`` explicitly (``names=``;
``catalog.names.resolve_reference`` is ``resolve`` with the catalog's names), so the
resolver knows the grammar and the stores but no model list, and nothing depends on
what was imported first. The default when nothing is named is the catalog's too
(``catalog.defaults``).

``resolve`` returns a ``ModelSource`` plus a one-line explanation of the choice. Nothing
here touches the network: a GGUF found in the local Hugging Face cache or in Ollama's
store resolves to the file itself (kind ``gguf``), so it is loaded in place; a hub
repository that is not cached stays kind ``hub`` and the backend downloads it.
A repository counts as a GGUF repository when it is named with a quantization, when its
cached snapshot holds GGUF files and no ``config.json``, or when its name ends in
``-GGUF`` (the hub's convention).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from adam_integrations.core.errors import (
    InvalidInputTypeError,
    InvalidRequestError,
    ModelNotFoundError,
)
from adam_integrations.core.stores.gguf_header import is_gguf
from adam_integrations.core.stores.hub import cached_files, cached_snapshot, pick_gguf
from adam_integrations.core.stores.ollama_store import OllamaName, find_model_blob
from adam_integrations.core.types import ModelSource

NameLookup = Callable[[str], "ModelSource | None"]
"""A catalog's short names: a name in, its source out (None when the name is not its)."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

REFERENCE_FORMS = (
    "'hf:<org>/<repo>', '<org>/<repo>', 'ollama:<name>[:<tag>]', a path to a model folder "
    "or a .gguf file, a catalog alias such as 'qwen3_small', or an embedded model "
    "('smollm2', 'all-minilm')"
)


def resolve(
    reference: str | os.PathLike[str], *, names: Sequence[NameLookup] = (),
    local_paths: bool = True,
) -> ModelSource:
    """Turn a model reference into a ``ModelSource``.

    ``names``: the short-name lookups to try, in order, before a bare ``org/repo`` is read
    as a hub id (the catalog's, from ``catalog.names.resolve_reference``).

    ``local_paths=False`` never reads the reference as a path on this machine (``adam
    serve`` resolves names from the network that way: a name that happens to exist as a
    file in the working directory stays a name).

    Example:
        >>> resolve("hf:Qwen/Qwen3-0.6B").location
        'Qwen/Qwen3-0.6B'
        >>> resolve("my-model", names=[lambda name: None])
        Traceback (most recent call last):
        ...
        adam_integrations.core.errors.ModelNotFoundError: 'my-model' is not a model ...
    """
    if isinstance(reference, os.PathLike):
        reference = os.fspath(reference)
    if reference is not None and not isinstance(reference, str):
        raise InvalidInputTypeError(
            f"a model reference must be a string or a path, got {type(reference).__name__}"
        )
    text = (reference or "").strip()
    if not text:
        raise ModelNotFoundError(
            f"no model named; name one as {REFERENCE_FORMS} (ModelManager() and the "
            "framework classes pick a default for this machine when none is named)")

    scheme, _, rest = text.partition(":")
    if scheme in REMOTE_ENGINES and rest:
        return remote_source(scheme, rest.strip())
    if scheme == "hf" and rest:
        return hub_source(rest.strip(), "named with hf:")
    for host in ("hf.co/", "huggingface.co/"):
        if text.startswith(host):
            return hub_source(text[len(host):], f"named as Ollama names it ({host}...)")
    if scheme == "ollama" and rest:
        return _ollama(rest.strip())

    if local_paths and _looks_like_path(text):
        return local_source(Path(text).expanduser())

    for lookup in names:
        named = lookup(text)
        if named is not None:
            return named

    if _HUB_ID.match(text.split(":")[0]):
        return hub_source(text, "")

    raise ModelNotFoundError(
        f"{text!r} is not a model this package knows. Name a model as {REFERENCE_FORMS}."
    )


REMOTE_ENGINES: dict[str, str] = {
    "openai": "https://api.openai.com/v1",  # unless OPENAI_BASE_URL says otherwise
    "vllm": "http://127.0.0.1:8000/v1",
    "sglang": "http://127.0.0.1:30000/v1",
    "llamacpp-server": "http://127.0.0.1:8080/v1",
    "anthropic": "https://api.anthropic.com",  # unless ANTHROPIC_BASE_URL says otherwise
}
"""The serving engines a reference may name, with the base URL each listens on by default
(all speak OpenAI's API but ``anthropic``, which speaks Anthropic's Messages API)."""
BASE_URL_VARIABLES = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}
"""The environment variable each SDK reads its base URL from."""


def remote_source(engine: str, reference: str, base_url: str | None = None) -> ModelSource:
    """``<model>[@<url>]`` on ``engine``: the model's id as the server knows it, and the
    server's base URL (``@<url>``, else ``base_url``, else the SDK's variable
    (``BASE_URL_VARIABLES``), else the engine's default).

    Example:
        >>> source = remote_source("vllm", "Qwen/Qwen3-32B@http://gpu-box:8000/v1")
        >>> source.location, source.endpoint
        ('Qwen/Qwen3-32B', 'http://gpu-box:8000/v1')
    """
    model, at, url = reference.rpartition("@")
    if not at or not url.startswith(("http://", "https://")):
        model, url = reference, ""
    model = model.strip()
    if not model:
        raise ModelNotFoundError(f"name the model served by {engine}: '{engine}:<model>"
                                 "[@<base url>]', e.g. 'vllm:Qwen/Qwen3-32B@http://host:8000/v1'")
    url = (url or base_url or os.environ.get(BASE_URL_VARIABLES.get(engine, ""), "")
           or REMOTE_ENGINES[engine]).rstrip("/")
    return ModelSource("remote", model, model, f"{model} served by {engine} at {url}",
                       endpoint=url, engine=engine)


def hub_source(reference: str, how: str = "") -> ModelSource:
    """A hub reference, ``<org>/<repo>[:<quantization>]``: the cached GGUF file when the
    repository is a GGUF repository in the local cache, else the repository."""
    repo_id, _, quantization = reference.strip().partition(":")
    if not _HUB_ID.match(repo_id):
        raise ModelNotFoundError(
            f"{repo_id!r} is not a Hugging Face repo id; write it as '<org>/<repo>', "
            "e.g. 'hf:Qwen/Qwen3-0.6B' or 'hf:Qwen/Qwen3-8B-GGUF:Q4_K_M'"
        )
    where = f"Hugging Face repo {repo_id}" + (f" ({how})" if how else "")
    name = f"{repo_id}:{quantization}" if quantization else repo_id
    snapshot = cached_snapshot(repo_id)
    files = cached_files(snapshot) if snapshot is not None else []
    has_config = "config.json" in files
    gguf_repo = bool(quantization) or (not has_config and any(
        f.lower().endswith(".gguf") for f in files)) or (
        not has_config and repo_id.lower().endswith("-gguf"))
    if gguf_repo and snapshot is not None:
        try:
            chosen = pick_gguf(files, quantization or None, repo_id)
        except ModelNotFoundError:
            chosen = None
        if chosen is not None:
            return ModelSource("gguf", str(snapshot / chosen), name,
                               f"{where}: {chosen} from the local cache, used in place",
                               quantization=quantization or None)
    return ModelSource("hub", repo_id, name, where, quantization=quantization or None,
                       gguf_repo=gguf_repo)


def ollama_blob(name: str) -> Path | None:
    """The GGUF blob of ``name`` in Ollama's store; None when absent or unreadable."""
    try:
        return find_model_blob(name)
    except (ModelNotFoundError, InvalidRequestError):
        return None  # a corrupt manifest: as if the store did not have it


def _ollama(name: str) -> ModelSource:
    """A model in Ollama's store: its GGUF blob, used in place; kind ``ollama`` (for the
    Ollama backend) when no local store holds it."""
    parsed = OllamaName.parse(name)
    blob = find_model_blob(name)
    if blob is not None:
        return ModelSource("gguf", str(blob), str(parsed),
                           f"Ollama model {parsed}: its GGUF blob {blob.name} in Ollama's "
                           "store, used in place", ollama_name=str(parsed))
    return ModelSource("ollama", str(parsed), str(parsed),
                       f"Ollama model {parsed} (not in a local Ollama store)",
                       ollama_name=str(parsed))


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith(("/", "./", "../", "~", ".\\"))
        or text.lower().endswith(".gguf")
        or os.path.exists(text)
    )


def local_source(
    path: Path, *, name: str | None = None, embedded: bool = False, explanation: str = ""
) -> ModelSource:
    """A model file or folder on disk (a GGUF file, a folder with ``config.json``, or a
    folder holding exactly one GGUF)."""
    if not path.exists():
        raise ModelNotFoundError(
            f"model path {str(path)!r} does not exist; check the spelling, or name a hub "
            "model as 'hf:<org>/<repo>'"
        )
    path = path.resolve()
    if path.is_file():
        if not is_gguf(path):
            raise ModelNotFoundError(
                f"{str(path)!r} is not a GGUF file (it does not start with the GGUF magic "
                "bytes); point to a .gguf file or to a folder with config.json"
            )
        return ModelSource("gguf", str(path), name or path.stem,
                           explanation or f"local GGUF file {path}", embedded=embedded)
    if (path / "config.json").exists():
        return ModelSource("folder", str(path), name or path.name,
                           explanation or f"local model folder {path}", embedded=embedded)
    ggufs = sorted(p for p in path.glob("*.gguf") if p.is_file())
    if len(ggufs) == 1:
        return local_source(ggufs[0], name=name, embedded=embedded, explanation=explanation)
    if len(ggufs) > 1:
        listing = ", ".join(p.name for p in ggufs)
        raise ModelNotFoundError(
            f"{str(path)!r} holds several GGUF files ({listing}); name the one to load"
        )
    raise ModelNotFoundError(
        f"{str(path)!r} holds no model: expected a config.json (transformers folder) or "
        "a .gguf file"
    )
