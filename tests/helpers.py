"""Small helpers several test modules share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from adam_integrations.backends import compute


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


async def compute_idle_soon(timeout: float = 5.0) -> bool:
    """Whether the compute thread becomes idle (generation stopped) within ``timeout``."""
    return await asyncio.to_thread(wait_until, compute.idle, timeout)


async def cancel_after_first_item(stream: Callable[[], AsyncIterator[object]]) -> None:
    """Consume ``stream()`` in a task, cancel it once the first item arrived, and check
    the task really ended cancelled."""
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in stream():
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), timeout=30)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return
    raise AssertionError("the stream finished instead of being cancelled")
