"""The Hugging Face hub, local cache first: what both in-process backends load from.

A repository is looked up in the local cache (``HF_HUB_CACHE`` / ``HF_HOME``) with
huggingface_hub's own functions (``snapshot_download`` / ``hf_hub_download`` with
``local_files_only=True``), without touching the network; only what
is missing is downloaded, and only when downloading is allowed (``allow_download`` and no
``HF_HUB_OFFLINE``). Errors say how to get the model.

GGUF repositories hold one file per quantization; ``pick_gguf`` chooses one the way
Ollama's ``hf.co/<org>/<repo>:<quant>`` names do (default Q4_K_M, else the smallest
common fallback), and the first part of a split GGUF.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from adam_integrations.core.errors import ModelNotFoundError

# Preferred quantizations when a GGUF repository is named without one (Ollama's default
# is Q4_K_M; then the usual trade-offs of quality and size).
GGUF_PREFERENCE = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q8_0", "Q6_K", "Q5_0", "Q3_K_M",
                   "F16", "BF16")
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The hub cache folder in use."""
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):  # read now: huggingface_hub reads it at import
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_snapshot(repo_id: str, revision: str | None = None,
                    cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The snapshot folder of ``repo_id`` in the local cache, or None (no network; the
    lookup is huggingface_hub's own, so it follows the cache layout it writes)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True,
                                      cache_dir=str(cache_root(cache_dir))))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        return None


def cached_files(snapshot: Path) -> list[str]:
    """Every file of a snapshot, as paths relative to it."""
    return sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*")
                  if p.is_file() or p.is_symlink())


def check_may_download(repo_id: str, allow_download: bool) -> None:
    """Refuse a download that is off, or that cannot work because the hub's host name
    does not resolve (checked once per ``_REACHABILITY_SECONDS``): huggingface_hub would
    otherwise retry for tens of seconds before failing with its own long message."""
    if hub_offline() or not allow_download:
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "allow_download=False"
        raise ModelNotFoundError(
            f"{repo_id!r} is not in the local Hugging Face cache and downloading is off "
            f"({why}). Download it once while online (`hf download {repo_id}`), or name "
            "a local folder or .gguf file.")
    problem = _hub_unreachable()
    if problem:
        raise ModelNotFoundError(
            f"{repo_id!r} is not in the local Hugging Face cache and the hub cannot be "
            f"reached ({problem}): this machine looks offline. Download it once while "
            "online, or name a local folder or .gguf file; HF_HUB_OFFLINE=1 skips this "
            "check and uses the cache only.")


_REACHABILITY_SECONDS = 30.0
_reachability: dict[str, tuple[float, str]] = {}


def _hub_unreachable() -> str:
    """Why the hub's host cannot be reached ("" when its name resolves); a resolver that
    does not answer within 3 s counts as unreachable."""
    import socket
    import threading
    import time
    from urllib.parse import urlparse

    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    known = _reachability.get(host)
    if known is not None and time.monotonic() - known[0] < _REACHABILITY_SECONDS:
        return known[1]
    outcome = [f"the name {host} did not resolve within 3 s"]

    def look_up() -> None:
        try:
            socket.getaddrinfo(host, 443)
            outcome[0] = ""
        except OSError as error:
            outcome[0] = f"{host}: {error.strerror or error}"

    worker = threading.Thread(target=look_up, daemon=True)
    worker.start()
    worker.join(3.0)
    _reachability[host] = (time.monotonic(), outcome[0])
    return outcome[0]


def hub_snapshot(repo_id: str, *, revision: str | None, cache_dir: str | None,
                 allow_download: bool,
                 ignore_patterns: Callable[[], list[str]] | None = None) -> Path:
    """A local snapshot of the whole repository: the cached one, else downloaded."""
    from huggingface_hub import snapshot_download

    cache_dir = str(cache_root(cache_dir))
    with contextlib.suppress(Exception):
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir,
                                      local_files_only=True))
    check_may_download(repo_id, allow_download)
    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir,
                                      ignore_patterns=ignore_patterns() if ignore_patterns
                                      else None))
    except Exception as error:
        raise download_error(repo_id, error) from error


def hub_file(repo_id: str, filename: str, *, revision: str | None, cache_dir: str | None,
             allow_download: bool) -> Path:
    """One file of the repository: the cached copy, else downloaded."""
    from huggingface_hub import hf_hub_download

    cache_dir = str(cache_root(cache_dir))
    with contextlib.suppress(Exception):
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir,
                                    local_files_only=True))
    check_may_download(repo_id, allow_download)
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir))
    except Exception as error:
        raise download_error(repo_id, error) from error


def hub_gguf(repo_id: str, quantization: str | None, *, revision: str | None,
             cache_dir: str | None, allow_download: bool) -> Path:
    """The GGUF file of ``repo_id`` for ``quantization`` (None: the preferred one), from
    the cache when it is there, else downloaded (every part of a split GGUF)."""
    snapshot = cached_snapshot(repo_id, revision, cache_dir)
    if snapshot is not None:
        try:
            chosen = pick_gguf(cached_files(snapshot), quantization, repo_id)
        except ModelNotFoundError:
            if hub_offline() or not allow_download:
                raise  # it says what the cached copy holds
        else:
            if (snapshot / chosen).exists():
                return snapshot / chosen
    check_may_download(repo_id, allow_download)
    from huggingface_hub import HfApi

    try:
        files = HfApi().list_repo_files(repo_id, revision=revision)
    except Exception as error:
        raise download_error(repo_id, error) from error
    chosen = pick_gguf(files, quantization, repo_id)
    paths = [hub_file(repo_id, part, revision=revision, cache_dir=cache_dir,
                      allow_download=allow_download)
             for part in split_parts(chosen, files) or [chosen]]
    return paths[0]  # llama.cpp finds the other parts of a split file beside the first


def pick_gguf(files: list[str], quantization: str | None, repo_id: str) -> str:
    """The GGUF file for ``quantization`` among ``files`` (case-insensitive match in the
    file name; the first part of a split file).

    Example:
        >>> pick_gguf(["Qwen3-8B-Q4_K_M.gguf", "Qwen3-8B-Q8_0.gguf"], None, "Qwen/Qwen3-8B-GGUF")
        'Qwen3-8B-Q4_K_M.gguf'
        >>> pick_gguf(["a/m-Q8_0-00001-of-00002.gguf", "a/m-Q8_0-00002-of-00002.gguf"], "q8_0", "r")
        'a/m-Q8_0-00001-of-00002.gguf'
    """
    ggufs = [f for f in files if f.lower().endswith(".gguf")
             and not Path(f).name.lower().startswith("mmproj")
             and (_SPLIT.search(f) is None or _SPLIT.search(f).group(1) == "00001")]
    if not ggufs:
        raise ModelNotFoundError(f"{repo_id!r} holds no GGUF file")
    wanted = [quantization] if quantization else list(GGUF_PREFERENCE)
    for quant in wanted:
        pattern = re.compile(rf"(^|[^A-Za-z0-9]){re.escape(quant)}([^A-Za-z0-9]|$)",
                             re.IGNORECASE)
        matches = sorted(f for f in ggufs if pattern.search(Path(f).name))
        if matches:
            return matches[0]
    if quantization is None and len(ggufs) == 1:
        return ggufs[0]
    available = ", ".join(sorted(Path(f).name for f in ggufs))
    raise ModelNotFoundError(
        f"{repo_id!r} has no GGUF for {quantization or 'a usual quantization'}; it holds: "
        f"{available}. Name one as 'hf:{repo_id}:<quantization>'.")


def split_parts(first: str, files: list[str]) -> list[str]:
    """Every part of a split GGUF whose first part is ``first`` (empty when not split)."""
    match = _SPLIT.search(first)
    if match is None:
        return []
    stem = first[: match.start()]
    return sorted(f for f in files if f.startswith(stem) and _SPLIT.search(f))


def download_error(repo_id: str, error: Exception) -> ModelNotFoundError:
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(error, GatedRepoError):
        return ModelNotFoundError(
            f"{repo_id!r} is a gated repository; accept its license on the hub and log in "
            "with `hf auth login`")
    if isinstance(error, RepositoryNotFoundError):
        return ModelNotFoundError(
            f"there is no repository {repo_id!r} on the Hugging Face hub; check the spelling")
    reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return ModelNotFoundError(
        f"{repo_id!r} is not in the local Hugging Face cache and could not be downloaded "
        f"({type(error).__name__}: {reason[:200]}). Check your connection, or name a local "
        "folder or .gguf file.")
