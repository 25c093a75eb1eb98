"""Quick facts about this machine that choosing a backend needs, without importing torch.

``gpu_kind()`` answers "is there a GPU a backend could use?" from files the drivers leave
(``/dev/nvidia*``, ``/dev/kfd``) and the platform (Apple Silicon), in microseconds, so that
``ModelManager()`` can choose llama.cpp for a GGUF on a CPU-only machine without paying
for a torch import. When torch is already imported its answer is used instead.
``CUDA_VISIBLE_DEVICES=""`` (or ``-1``) hides NVIDIA GPUs, as it does for CUDA programs.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Literal

import psutil

GpuKind = Literal["cuda", "rocm", "metal"]


def gpu_kind() -> GpuKind | None:
    """The kind of GPU present, or None on a CPU-only machine.

    Example:
        >>> gpu_kind() in (None, "cuda", "rocm", "metal")
        True
    """
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "metal"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES", None)
    if hidden is not None and hidden.strip() in ("", "-1"):
        return None
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return "rocm" if getattr(torch.version, "hip", None) else "cuda"
            return None
        except Exception:  # a broken driver: fall back to the device files
            pass
    if Path("/dev/nvidiactl").exists() or any(Path("/dev").glob("nvidia[0-9]*")):
        return "cuda"
    if Path("/dev/kfd").exists():
        return "rocm"
    return None


def physical_cores() -> int:
    """Physical CPU cores (llama.cpp runs fastest with one thread per core)."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of RAM available to a new model now, or None when it cannot be read."""
    try:
        return int(psutil.virtual_memory().available)
    except OSError:
        return None
