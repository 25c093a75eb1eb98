"""Where this package keeps its own files (GGUF conversions, the file-hash cache)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$ADAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/adam-integrations``, else ``~/.cache/...``."""
    explicit = os.environ.get("ADAM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "adam-integrations"


def producer_key(*packages: str) -> str:
    """``transformers-5.24.0`` for the installed versions of ``packages``: what a cache
    entry is named after, so that only the library versions that wrote it read it (a
    folder saved by transformers 5 does not load in 4, and the other way round)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "none"

    return "+".join(f"{package}-{installed(package)}" for package in packages)
