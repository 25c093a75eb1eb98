"""Stop strings and the async bridge, shared by every backend."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from adam_integrations.core.streaming import StopStringFilter, iterate_in_thread


def feed(stops, pieces):
    f = StopStringFilter(stops)
    out = "".join(f.push(p) for p in pieces)
    return out + f.flush(), f.stopped


def test_text_without_stop_strings_passes_through_unchanged():
    assert feed(["###"], ["Hello", " wor", "ld"]) == ("Hello world", False)


def test_a_stop_string_split_over_pieces_is_never_emitted():
    assert feed(["</end>"], ["abc</", "en", "d> more"]) == ("abc", True)


def test_a_partial_match_that_does_not_complete_is_released():
    f = StopStringFilter(["STOP"])
    assert f.push("ST") == ""
    assert f.push("ART") == "START"
    assert not f.stopped


def test_the_earliest_of_several_stop_strings_wins():
    assert feed(["b", "zz"], ["a zz b"]) == ("a ", True)


def test_nothing_is_emitted_after_a_stop():
    f = StopStringFilter(["x"])
    f.push("1x2")
    assert f.push("3") == "" and f.flush() == ""


async def test_iterate_in_thread_yields_every_item_in_order():
    items = [item async for item in iterate_in_thread(lambda: iter(range(5)))]
    assert items == [0, 1, 2, 3, 4]


async def test_iterate_in_thread_reraises_the_iterators_error():
    def failing():
        yield 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        async for _ in iterate_in_thread(failing):
            pass


async def test_cancelling_the_consumer_closes_the_blocking_iterator():
    closed = threading.Event()

    def slow():
        try:
            for i in range(1000):
                time.sleep(0.01)
                yield i
        finally:
            closed.set()

    async def consume():
        async for _ in iterate_in_thread(slow):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(closed.wait, 2.0)


async def test_the_event_loop_keeps_running_while_the_iterator_blocks():
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    def blocking():
        time.sleep(0.2)
        yield "done"

    tick_task = asyncio.create_task(ticker())
    items = [item async for item in iterate_in_thread(blocking)]
    tick_task.cancel()
    assert items == ["done"] and ticks >= 10
