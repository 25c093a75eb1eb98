"""The pick is fast enough, not only fitting: decode speed estimated from the machine's
RAM read bandwidth and the bytes each token reads (synthetic profiles, no probe)."""

from __future__ import annotations

import pytest

from adam_integrations.catalog.qwen3 import BITS_PER_WEIGHT, GENERATIONS, find_qwen3
from adam_integrations.catalog.selection import (
    DECODE_EFFICIENCY,
    SECONDS_PER_LAYER,
    SECONDS_PER_VOCAB_ENTRY,
    recommend,
)
from adam_integrations.core.hardware import HardwareProfile

GIB = 1024**3


def cpu(ram_gib: float, bandwidth_gb_s: float | None) -> HardwareProfile:
    return HardwareProfile(cpu_cores=2, cpu_threads=2, architecture="x86_64",
                           ram_total=int(ram_gib * GIB), ram_available=int(ram_gib * GIB),
                           memory_bandwidth=bandwidth_gb_s * 1e9 if bandwidth_gb_s else None)


def test_the_estimate_is_bandwidth_over_the_bytes_each_token_reads():
    option = next(o for o in recommend(cpu(24, 24)).options
                  if o.model.alias == "qwen3_xl" and o.precision == "Q4_K_M")
    seconds = (8.2e9 * BITS_PER_WEIGHT["Q4_K_M"] / 8 / (24e9 * DECODE_EFFICIENCY)
               + 36 * SECONDS_PER_LAYER + 151_936 * SECONDS_PER_VOCAB_ENTRY)
    assert option.tokens_per_second == pytest.approx(1 / seconds)


def test_a_moe_reads_only_its_active_parameters_per_token():
    options = recommend(cpu(64, 24)).options
    moe = next(o for o in options if o.model.alias == "qwen3_moe_small"
               and o.precision == "Q4_K_M")
    dense = next(o for o in options if o.model.alias == "qwen3_large"
                 and o.precision == "Q4_K_M")
    assert moe.tokens_per_second > dense.tokens_per_second  # 3.3B active vs 4B


@pytest.mark.parametrize("min_speed", [10.0, 2.0, 20.0])
def test_the_pick_is_the_newest_generations_largest_option_that_reaches_the_speed(
        min_speed):
    result = recommend(cpu(24, 24), min_speed=min_speed)
    choice = result.choice
    assert choice is not None and choice.tokens_per_second >= min_speed
    age = GENERATIONS.index

    def better(o):
        newer = age(o.model.generation) < age(choice.model.generation)
        bigger = o.model.generation == choice.model.generation and \
            o.model.parameters > choice.model.parameters
        return newer or bigger

    assert [o for o in result.options if o.fits and o.tokens_per_second >= min_speed
            and better(o)] == []
    assert f"about {choice.tokens_per_second:.0f} tokens/s" in result.explanation


def test_when_nothing_is_fast_enough_the_fastest_fitting_option_is_picked():
    result = recommend(cpu(24, 24), min_speed=500.0)
    fastest = max((o for o in result.options if o.fits), key=lambda o: o.tokens_per_second)
    assert result.choice is fastest and "no option reaches 500" in result.explanation


def test_with_enough_ram_and_bandwidth_a_moe_is_picked():
    choice = recommend(cpu(64, 60)).choice
    assert choice.model.moe and choice.model.alias == "qwen3.5_35b_a3b"


def test_without_a_measured_bandwidth_the_size_rule_still_holds():
    choice = recommend(cpu(8, None)).choice
    assert choice.tokens_per_second is None
    assert choice.model.parameters <= find_qwen3("qwen3_xl").parameters
