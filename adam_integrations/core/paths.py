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
