"""What this machine has: quick checks for choosing a backend, and a full profile.

``HardwareProfile.detect()`` reports CPU, RAM and GPUs (NVIDIA through NVML, else
torch or nvidia-smi; AMD through ROCm's torch; Apple's unified memory through Metal), and
notes what it could not see instead of failing.

``gpu_kind()`` answers "is there a GPU a backend could use?" from files the drivers leave
(``/dev/nvidia*``, ``/dev/kfd``) and the platform (Apple Silicon), in microseconds, so that
``ModelManager()`` can choose llama.cpp for a GGUF on a CPU-only machine without paying
for a torch import. When torch is already imported its answer is used instead.
``CUDA_VISIBLE_DEVICES=""`` (or ``-1``) hides NVIDIA GPUs, as it does for CUDA programs.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from adam_integrations.core.atomic import write_atomically
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.paths import cache_root

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


def usable_cores() -> int:
    """The cores this process can really use: the physical cores, fewer when its CPU
    affinity or a cgroup CPU quota (a container's ``--cpus``) allows fewer. llama.cpp's
    threads wait for each other at every step, so one thread more than the CPUs it gets
    stalls them all: on a 2-core machine held to one core, two threads decoded at a tenth
    of one thread's speed (``benchmarks/README.md``).

    Example:
        >>> 1 <= usable_cores() <= physical_cores()
        True
    """
    cores = physical_cores()
    with contextlib.suppress(AttributeError, OSError):
        cores = min(cores, len(os.sched_getaffinity(0)))
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, int(quota))
    return max(1, cores)


def _cgroup_cpu_quota() -> float | None:
    """CPUs a cgroup CPU quota allows (cgroup v2 ``cpu.max``, v1 ``cfs_quota_us``), None
    without one."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of RAM available to a new model now, or None when it cannot be read."""
    try:
        return int(psutil.virtual_memory().available)
    except OSError:
        return None


@dataclass(frozen=True)
class GpuDevice:
    """One GPU: its memory in bytes (``free`` None when it could not be read)."""

    name: str
    kind: GpuKind
    total: int
    free: int | None = None


@dataclass(frozen=True)
class HardwareProfile:
    """What this machine has for running models, and what could not be seen.

    ``detect()`` never raises: a missing library or driver becomes a line in ``notes``.
    Synthetic profiles (for planning, or tests) are built directly.

    Example:
        >>> profile = HardwareProfile.detect()
        >>> profile.cpu_cores >= 1 and profile.ram_total > 0
        True
    """

    cpu_cores: int
    cpu_threads: int
    architecture: str
    ram_total: int
    ram_available: int
    gpus: tuple[GpuDevice, ...] = ()
    unified_memory: int | None = None  # Apple: the GPU's recommended working set
    cpu_bf16: bool = False  # AVX512-BF16 or AMX: transformers runs bf16 fast on the CPU
    notes: tuple[str, ...] = ()
    memory_bandwidth: float | None = None
    """Bytes per second read from RAM with every core (``memory_bandwidth()``); decoding
    on the CPU is bounded by it. None: not measured (synthetic profiles)."""

    @classmethod
    def detect(cls) -> HardwareProfile:
        notes: list[str] = []
        memory = psutil.virtual_memory()
        gpus, unified = _detect_gpus(notes)
        return cls(cpu_cores=physical_cores(), cpu_threads=os.cpu_count() or 1,
                   architecture=platform.machine() or "unknown", ram_total=int(memory.total),
                   ram_available=int(memory.available), gpus=tuple(gpus),
                   unified_memory=unified, cpu_bf16=_cpu_flags() & {"avx512_bf16", "amx_bf16"}
                   != set(), notes=tuple(notes), memory_bandwidth=memory_bandwidth())

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> HardwareProfile:
        """A profile written as JSON (``adam recommend --hardware FILE``: plan for another
        machine, or pin one for tests): this class's fields, sizes in bytes and bytes per
        second, ``gpus`` as a list of ``{"name", "kind", "total", "free"}``.

        Example:
            >>> import json, tempfile
            >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            ...     json.dump({"cpu_cores": 8, "cpu_threads": 16, "architecture": "x86_64",
            ...                "ram_total": 64 * 2**30, "ram_available": 60 * 2**30}, f)
            >>> HardwareProfile.from_file(f.name).cpu_cores
            8
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            gpus = tuple(GpuDevice(**gpu) for gpu in data.pop("gpus", []))
            notes = tuple(data.pop("notes", ()))
            return cls(**data, gpus=gpus, notes=notes)
        except OSError as error:
            raise InvalidRequestError(f"cannot read the hardware profile {str(path)!r}: "
                                      f"{error.strerror}") from None
        except (ValueError, TypeError) as error:
            raise InvalidRequestError(
                f"the hardware profile {str(path)!r} is not a profile ({error}); write "
                "JSON with cpu_cores, cpu_threads, architecture, ram_total, ram_available "
                "(bytes) and optionally gpus, memory_bandwidth, cpu_bf16") from None

    @property
    def gpu_kind(self) -> GpuKind | None:
        """The kind of the first GPU ("metal" for Apple's unified memory), None without."""
        if self.gpus:
            return self.gpus[0].kind
        return "metal" if self.unified_memory else None

    @property
    def gpu_memory(self) -> int:
        """Free GPU memory over every GPU (total where free could not be read)."""
        return sum(g.free if g.free is not None else g.total for g in self.gpus)

    def describe(self) -> list[str]:
        """Human-readable lines, as ``adam hardware`` prints them."""
        read = (f", reads {self.memory_bandwidth / 1e9:.1f} GB/s"
                if self.memory_bandwidth else "")
        lines = [f"CPU      {self.cpu_cores} cores ({self.cpu_threads} threads), "
                 f"{self.architecture}",
                 f"RAM      {_gib(self.ram_total)} total, {_gib(self.ram_available)} "
                 f"available{read}"]
        for index, gpu in enumerate(self.gpus):
            free = f", {_gib(gpu.free)} free" if gpu.free is not None else ""
            lines.append(f"GPU {index}    {gpu.name} ({gpu.kind}): {_gib(gpu.total)}{free}")
        if self.unified_memory:
            lines.append(f"unified  {_gib(self.unified_memory)} usable by the GPU (Metal)")
        if not self.gpus and not self.unified_memory:
            lines.append("GPU      none found")
        lines.extend(f"note     {note}" for note in self.notes)
        return lines


_BANDWIDTH_PROBE_BYTES = 256 * 1024**2  # far beyond any CPU cache


def memory_bandwidth() -> float | None:
    """Bytes per second this machine reads from RAM with one thread per core, measured
    once (best of 3 passes over 256 MiB, about a second) and kept per machine in the cache
    folder. None when it cannot be measured.

    Decode speed on a CPU is bounded by this: every generated token reads every weight
    once (``catalog.selection`` turns it into tokens per second).
    """
    key = f"{_cpu_model()}|{physical_cores()}|{psutil.virtual_memory().total}"
    cache = cache_root() / "memory-bandwidth.json"
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(cache.read_text())
        if isinstance(known, dict) and isinstance(known.get(key), (int, float)):
            return float(known[key])
    try:
        value = _measure_bandwidth()
    except Exception:  # no numpy, no memory: the speed estimate is then unknown
        return None
    with contextlib.suppress(OSError):
        write_atomically(cache, json.dumps({key: value}))
    return value


def _measure_bandwidth() -> float:
    import threading
    import time

    import numpy as np

    threads = physical_cores()
    data = np.ones(_BANDWIDTH_PROBE_BYTES // 4, dtype=np.float32)
    parts = np.array_split(data, threads)
    best = float("inf")
    for _ in range(3):
        workers = [threading.Thread(target=np.add.reduce, args=(part,)) for part in parts]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        best = min(best, time.perf_counter() - started)
    return data.nbytes / best


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    line = next((x for x in text.splitlines() if x.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def _gib(value: int | None) -> str:
    return "?" if value is None else f"{value / 1024**3:.1f} GiB"


def _detect_gpus(notes: list[str]) -> tuple[list[GpuDevice], int | None]:
    """GPUs by the cheapest reliable route: NVML, then torch, then nvidia-smi; ROCm and
    Apple through torch when it is importable."""
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return [], _apple_unified_memory(notes)
    if gpu_kind() is None:
        return [], None
    gpus = _nvml(notes) or _torch_gpus(notes) or _nvidia_smi(notes)
    if not gpus:
        notes.append("a GPU device file exists but no library could read its memory "
                     "(install nvidia-ml-py, or torch with CUDA/ROCm)")
    return gpus, None


def _nvml(notes: list[str]) -> list[GpuDevice]:
    try:
        import pynvml
    except ImportError:
        notes.append("nvidia-ml-py is not installed: GPU memory read another way")
        return []
    try:
        pynvml.nvmlInit()
    except Exception as error:  # no NVIDIA driver
        notes.append(f"NVML could not start ({error})")
        return []
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            info = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            devices.append(GpuDevice(name.decode() if isinstance(name, bytes) else name,
                                     "cuda", int(info.total), int(info.free)))
        return devices
    except Exception as error:
        notes.append(f"NVML failed while reading the GPUs ({error})")
        return []
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _torch_gpus(notes: list[str]) -> list[GpuDevice]:
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        kind: GpuKind = "rocm" if getattr(torch.version, "hip", None) else "cuda"
        devices = []
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            devices.append(GpuDevice(torch.cuda.get_device_name(index), kind, int(total),
                                     int(free)))
        return devices
    except Exception as error:
        notes.append(f"torch could not read the GPUs ({error})")
        return []


def _nvidia_smi(notes: list[str]) -> list[GpuDevice]:
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,memory.free",
             "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10,
            check=True).stdout
    except (OSError, subprocess.SubprocessError) as error:
        notes.append(f"nvidia-smi failed ({error})")
        return []
    devices = []
    for line in out.strip().splitlines():
        name, total, free = (part.strip() for part in line.rsplit(",", 2))
        devices.append(GpuDevice(name, "cuda", int(total) * 1024**2, int(free) * 1024**2))
    return devices


def _apple_unified_memory(notes: list[str]) -> int | None:
    try:
        import torch

        if torch.backends.mps.is_available():
            return int(torch.mps.recommended_max_memory())
    except Exception as error:
        notes.append(f"torch could not read Metal's memory ({error})")
        return None
    notes.append("Metal is not available to torch; GPU memory not read")
    return None
