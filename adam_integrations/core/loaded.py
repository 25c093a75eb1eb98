"""One loaded copy per model per process, and keep-alive idle unloading.

Every ``ModelManager`` (and so every LangChain or LlamaIndex object built on one) gets
its backend objects from ``loaded_models``: two objects naming the same model, backend
and options share one backend object, which holds the weights once.

``keep_alive`` follows Ollama: a number of seconds or a Go-style duration ("5m",
"1h30m", "500ms"); 0 unloads right after each request; a negative value, or None, keeps
the model loaded until ``unload()`` or the end of the process. An idle model is unloaded
by a background thread; the next request loads it again.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any, Final

from adam_integrations.core.backend import ModelBackend
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.types import ModelSource


class Unset(Enum):
    """The type of ``UNSET``: "no value given", where None already means something."""

    TOKEN = 0


UNSET: Final = Unset.TOKEN

FOREVER_SECONDS = 10 * 365 * 24 * 3600.0
"""A keep-alive this long or longer means "until unloaded" (Ollama reads such values as
no expiry too; a date that far ahead would overflow a ``datetime``)."""
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
KEEP_ALIVE_PATTERN = r"^\s*-?(\d+(\.\d+)?|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)\s*$"
"""The texts ``parse_keep_alive`` reads (a number, or Go durations such as ``1h30m``, a
minus before either), as one regex (JSON Schema's dialect too)."""
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                 "h": 3600.0}


def parse_keep_alive(value: float | int | str | None) -> float | None:
    """Seconds to keep an idle model loaded; None means "until unloaded".

    Example:
        >>> parse_keep_alive("1m30s"), parse_keep_alive(0), parse_keep_alive(-1)
        (90.0, 0.0, None)
        >>> parse_keep_alive("99999999999999h") is None  # beyond FOREVER_SECONDS
        True
    """
    seconds = _keep_alive_seconds(value)
    return None if seconds is None or seconds >= FOREVER_SECONDS else seconds


def _keep_alive_seconds(value: float | int | str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidRequestError(f"keep_alive must be seconds or a duration, got {value!r}")
    if isinstance(value, (int, float)):
        if value != value:  # NaN (Python's json reads it)
            raise InvalidRequestError("keep_alive must be a number of seconds, got NaN")
        return None if value < 0 or value >= FOREVER_SECONDS else float(value)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return _keep_alive_seconds(float(text))
    negative = text.startswith("-")
    text = text.removeprefix("-")
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidRequestError(
            f"keep_alive {value!r} is not a duration; use seconds (300), '5m', '1h30m', "
            "'0' to unload after each request, or -1 to keep the model loaded"
        )
    if negative:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


class LoadedModels:
    """The process-wide table of backend objects, and their idle deadlines."""

    def __init__(self) -> None:
        self._backends: dict[str, ModelBackend] = {}
        self._keep_alive: dict[int, float] = {}
        self._last_used: dict[int, float] = {}
        self._active: dict[int, int] = {}
        self._lock = threading.Condition()
        self._reaper: threading.Thread | None = None

    def backend(
        self, backend_class: type[ModelBackend], source: ModelSource, options: dict[str, Any],
        create: Callable[[], ModelBackend],
    ) -> ModelBackend:
        """The shared backend object for this model, created on first request."""
        key = "|".join((backend_class.__module__, backend_class.__qualname__, source.kind,
                        source.location, repr(sorted(options.items()))))
        with self._lock:
            if key not in self._backends:
                self._backends[key] = create()
            return self._backends[key]

    def set_keep_alive(self, backend: ModelBackend, keep_alive: float | None) -> None:
        """Unload ``backend`` after ``keep_alive`` idle seconds (None: never)."""
        with self._lock:
            if keep_alive is None:
                self._keep_alive.pop(id(backend), None)
            else:
                self._keep_alive[id(backend)] = keep_alive
                self._ensure_reaper()
            self._lock.notify_all()

    def _begin(self, backend: ModelBackend) -> None:
        """A request on ``backend`` starts: it is not idle until ``_end``."""
        with self._lock:
            self._active[id(backend)] = self._active.get(id(backend), 0) + 1

    def _end(self, backend: ModelBackend) -> None:
        """A request on ``backend`` ended: its idle time starts now."""
        with self._lock:
            self._active[id(backend)] = max(0, self._active.get(id(backend), 1) - 1)
            self._last_used[id(backend)] = time.monotonic()
            self._lock.notify_all()

    @contextmanager
    def in_use(self, backend: ModelBackend, *, keep_alive: float | Unset | None = UNSET
               ) -> Iterator[ModelBackend]:
        """Mark ``backend`` busy for the ``with`` block (it is never unloaded mid-request);
        afterwards its idle time starts, with ``keep_alive`` set first when given.

        Example:
            >>> with loaded_models.in_use(backend):            # doctest: +SKIP
            ...     answer = backend.chat(messages)
        """
        self._begin(backend)
        try:
            yield backend
        finally:
            if not isinstance(keep_alive, Unset):
                self.set_keep_alive(backend, keep_alive)
            self._end(backend)

    def expires_in(self, backend: ModelBackend) -> float | None:
        """Seconds until ``backend`` is unloaded for idleness (None: it stays loaded)."""
        with self._lock:
            keep = self._keep_alive.get(id(backend))
            if keep is None:
                return None
            if self._active.get(id(backend)):
                return keep
            last = self._last_used.get(id(backend), time.monotonic())
            return max(0.0, last + keep - time.monotonic())

    def loaded(self) -> list[ModelBackend]:
        """The shared backends whose weights are in memory now."""
        with self._lock:
            return [b for b in self._backends.values() if b.is_loaded]

    def _ensure_reaper(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(target=self._reap, name="adam-keep-alive",
                                            daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        """Unload backends idle past their keep-alive; sleep until the next deadline."""
        while True:
            with self._lock:
                now = time.monotonic()
                due, wait = [], 60.0
                for backend in self._backends.values():
                    keep = self._keep_alive.get(id(backend))
                    if keep is None or self._active.get(id(backend)) or not backend.is_loaded:
                        continue
                    deadline = self._last_used.get(id(backend), now) + keep
                    if deadline <= now:
                        due.append(backend)
                    else:
                        wait = min(wait, deadline - now)
                if not due:
                    self._lock.wait(timeout=wait)
                    continue
            for backend in due:
                backend.unload()


loaded_models = LoadedModels()
"""The table every ModelManager uses."""
