"""The one thread that runs all torch work (loading, generation, embeddings) in a process.

Why one thread: torch's CPU kernels use an OpenMP thread pool per calling thread. When
two threads of a process both run torch work, their pools compete and every later step
gets slower. Measured on a 2-core CPU with SmolLM2-135M in bf16 (docs/speed.md):
generate() ran at ~46 tok/s on the thread that ran torch first and at ~25-31 tok/s once a
second thread had run torch too, whichever of them generated. A fresh thread per request
therefore cost a third of the speed. Running everything on one long-lived thread keeps a
single pool, and also queues requests so they never interleave.

At exit (``atexit``) ``shutting_down`` is set, so a generation nobody reads any more stops
at its next token, and the exit waits for the thread to finish its job: torch must not be
mid-kernel when the interpreter tears down (that aborts the process). The thread is a
daemon, so an idle one never holds the exit up. Work submitted from the compute thread
itself runs inline, so nested calls cannot deadlock.
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

THREAD_NAME = "adam-compute"

EXIT_WAIT_SECONDS = 30.0  # a generation stops within one token; a load may take longer

shutting_down = threading.Event()
"""Set when the interpreter exits; running generations stop at their next token."""

_jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = (
    queue.SimpleQueue())
_pending = 0
_state = threading.Condition()
_thread: threading.Thread | None = None


def on_compute_thread() -> bool:
    """Whether the caller is the compute thread."""
    return threading.current_thread() is _thread


def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Queue ``fn(*args)`` on the compute thread."""
    global _pending, _thread
    future: Future[T] = Future()
    with _state:
        _pending += 1
        if _thread is None:
            _thread = threading.Thread(target=_work, name=THREAD_NAME, daemon=True)
            _thread.start()
    _jobs.put((future, fn, args))
    return future


def run(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on the compute thread and return its result."""
    if on_compute_thread():
        return fn(*args)
    return submit(fn, *args).result()


def others_waiting() -> bool:
    """(On the compute thread.) Whether other work is queued behind the running job: a
    long job (a generation loop) then gives the thread up and queues itself again."""
    with _state:
        return _pending > 1


def idle() -> bool:
    """True when no torch work is running or queued."""
    with _state:
        return _pending == 0


def _work() -> None:
    while True:
        future, fn, args = _jobs.get()
        if not future.set_running_or_notify_cancel():
            _finished()
            continue
        try:
            result = fn(*args)
        except BaseException as error:  # handed to whoever waits on the future
            _finished()
            future.set_exception(error)
        else:
            _finished()  # idle() is true by the time the waiter wakes
            future.set_result(result)


def _finished() -> None:
    global _pending
    with _state:
        _pending -= 1
        _state.notify_all()


@atexit.register
def _stop_at_exit() -> None:
    shutting_down.set()
    with _state:
        _state.wait_for(lambda: _pending == 0, timeout=EXIT_WAIT_SECONDS)
