"""Small helpers several test modules share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

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
