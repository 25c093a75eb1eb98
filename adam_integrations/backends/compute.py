"""The one thread that runs all torch work (loading, generation, embeddings) in a process.

Why one thread: torch's CPU kernels use an OpenMP thread pool per calling thread. When
two threads of a process both run torch work, their pools compete and every later step
gets slower. Measured on a 2-core CPU with SmolLM2-135M in bf16 (see README, "Speed"):
generate() ran at ~46 tok/s on the thread that ran torch first and at ~25-31 tok/s once a
second thread had run torch too, whichever of them generated. A fresh thread per request
therefore cost a third of the speed. Running everything on one long-lived thread keeps a
single pool, and also queues requests so they never interleave.

Work submitted from the compute thread itself runs inline, so nested calls cannot deadlock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

THREAD_NAME = "adam-compute"

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)
_pending = 0
_pending_lock = threading.Lock()

shutting_down = threading.Event()
"""Set when the interpreter exits; running generations stop at their next token."""

# Runs before concurrent.futures joins its worker threads at exit (callbacks registered
# later run first), so a generation nobody reads any more cannot hold up the exit.
threading._register_atexit(shutting_down.set)


def on_compute_thread() -> bool:
    """Whether the caller is the compute thread."""
    return threading.current_thread().name.startswith(THREAD_NAME)


def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Queue ``fn(*args)`` on the compute thread."""
    global _pending
    with _pending_lock:
        _pending += 1
    future = _executor.submit(fn, *args)
    future.add_done_callback(_done)
    return future


def run(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on the compute thread and return its result."""
    if on_compute_thread():
        return fn(*args)
    return submit(fn, *args).result()


def idle() -> bool:
    """True when no torch work is running or queued."""
    with _pending_lock:
        return _pending == 0


def _done(_: Future[Any]) -> None:
    global _pending
    with _pending_lock:
        _pending -= 1
