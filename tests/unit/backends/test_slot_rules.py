"""The llama.cpp slot scheduler's rules, apart from llama.cpp (``choose_slot``,
``prompt_chunks`` in ``backends/local/llamacpp_slots.py``): which free slot a request
takes, and how one step's batch is shared between the prompts being read and the streams
being generated. The decode loop itself runs on the embedded GGUF in
``tests/integration/test_parallel.py``."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from adam_integrations.backends.local.llamacpp_slots import (
    SlotRequest,
    _Slot,
    choose_slot,
    prompt_chunks,
)


def _request(prompt: list[int], *, pending: list[int] | None = None) -> SlotRequest:
    request = SlotRequest(prompt=prompt, max_new=8, sampler=None, decoder=None)
    request.pending = list(prompt if pending is None else pending)
    return request


def _slots(*held: list[int], busy: tuple[int, ...] = (), used: tuple[float, ...] = ()
           ) -> list[_Slot]:
    slots = [_Slot(i, tokens=list(tokens)) for i, tokens in enumerate(held)]
    for i in busy:
        slots[i].request = _request([0])
    for slot, when in zip(slots, used, strict=False):
        slot.used_at = when
    return slots


def test_a_request_takes_the_free_slot_holding_the_longest_start_of_its_prompt():
    slots = _slots([1, 2], [1, 2, 3, 4], [9, 9, 9], [1, 2, 3, 4, 5], busy=(3,))
    assert choose_slot(slots, [1, 2, 3, 4, 5, 6]).sequence == 1  # 3 is busy
    assert choose_slot(_slots([1], busy=(0,)), [1]) is None


def test_among_equals_a_slot_next_to_busy_ones_then_the_least_recently_used():
    # slots 0..3 hold nothing of the prompt; 2 is busy: 1 and 3 are next to it
    slots = _slots([], [], [], [], busy=(2,), used=(5.0, 9.0, 0.0, 3.0))
    assert choose_slot(slots, [7, 7]).sequence == 3  # beside busy 2, used before 1


def test_prompts_share_what_the_batch_leaves_first_come_first_read():
    first, second = _request(list(range(10))), _request(list(range(100, 130)))
    chunks = prompt_chunks([first, second], batch=16, chunk=8)
    assert chunks == {first: list(range(10)), second: list(range(100, 106))}
    assert first.pending == [] and second.pending == list(range(106, 130))


def test_while_streams_generate_a_prompt_reads_at_most_a_chunk_per_step():
    generating = [_request([1], pending=[]) for _ in range(3)]
    long = _request(list(range(1000)))
    chunks = prompt_chunks([*generating, long], batch=512, chunk=64)
    assert chunks == {long: list(range(64))}  # one token each for the three, 64 read
    alone = _request(list(range(1000)))
    assert len(prompt_chunks([alone], batch=512, chunk=64)[alone]) == 512
