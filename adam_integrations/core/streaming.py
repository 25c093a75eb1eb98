"""Streaming machinery every backend shares: stop strings, and async over sync streams.

Backends produce a synchronous iterator of text pieces. Two things happen the same way
for all of them, so they live here:

- ``StopStringFilter`` cuts the stream at the first stop string. Text that might be the
  start of a stop string is held back until it is clear, so a stop string split over
  several tokens never reaches the consumer.
- ``iterate_in_thread`` turns a blocking iterator into an async one. The iterator runs on
  its own thread, so the event loop never blocks; when the consumer stops (break, aclose,
  task cancellation) the iterator is closed on its own thread, which is how a backend
  learns to stop generating. A backend that blocks before its first item (a long prompt
  being read) also registers a wake-up on the thread's ``StopSignal``
  (``current_stop_signal()``), so it stops at once instead of after the prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class StopStringFilter:
    """Cut a text stream at the first of ``stops``, holding back possible partial matches.

    Example:
        >>> f = StopStringFilter(["END"])
        >>> f.push("hello E"), f.push("ND more"), f.stopped
        ('hello ', '', True)
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def push(self, text: str) -> str:
        """Feed new text; return what can safely be emitted now."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        buffer = self._held + text
        cut = min((i for i in (buffer.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return buffer[:cut]
        keep = self._longest_partial_suffix(buffer)
        self._held = buffer[len(buffer) - keep:] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """End of stream: release whatever was held back."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

    def _longest_partial_suffix(self, buffer: str) -> int:
        best = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:length]):
                    best = length
                    break
        return best


class StopSignal:
    """Set once the consumer of a stream stops reading. A producer that blocks waiting
    for something else registers, with ``on_set``, a quick non-blocking callback that
    wakes it (it runs on the thread that sets the signal)."""

    def __init__(self) -> None:
        self._set = False
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            self._set, callbacks, self._callbacks = True, self._callbacks, []
        for callback in callbacks:
            callback()

    def on_set(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the signal is set (at once if it already is)."""
        with self._lock:
            if not self._set:
                self._callbacks.append(callback)
                return
        callback()


_thread_state = threading.local()


def current_stop_signal() -> StopSignal | None:
    """The stop signal of the stream this thread produces (``iterate_in_thread``), if
    any."""
    return getattr(_thread_state, "stop", None)


async def iterate_in_thread(
    make_iterator: Callable[[], Iterator[T]], *, name: str = "adam-stream"
) -> AsyncIterator[T]:
    """Run a blocking iterator on a worker thread and yield its items asynchronously.

    Cancelling the consuming task, or closing this async generator early, makes the
    worker close the blocking iterator before it fetches another item, so generation
    stops within one step; this generator finishes only once that has happened.
    Exceptions from the iterator are re-raised here.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = StopSignal()

    def put(item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def produce() -> None:
        _thread_state.stop = stop
        iterator: Iterator[T] | None = None
        try:
            iterator = make_iterator()
            for item in iterator:
                if stop.is_set():
                    break
                put(item)
        except BaseException as error:  # handed to the consumer, re-raised there
            put(Failure(error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            put(_DONE)

    # the worker sees the caller's context variables (a server's per-request template
    # limits, for one), as asyncio.to_thread's would
    worker = threading.Thread(target=contextvars.copy_context().run, args=(produce,),
                              name=name, daemon=True)
    worker.start()
    done = False
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                done = True
                break
            if isinstance(item, Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        # Wait (without blocking the loop) until the worker has closed the iterator, so
        # generation has really stopped when this generator is done: its last item,
        # _DONE, is put after the close.
        while not done:
            done = await queue.get() is _DONE


class Failure:
    """An exception raised on a worker thread, passed over a queue to be re-raised by the
    consumer."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error
