"""The rise over one breath both breathing tests share."""

from __future__ import annotations

import math

import pytest

from controller.safety.lagged_rise import SMOOTH_BLOCKS, LaggedRise

LAG = 300  # a 3 s breath of 10 ms blocks


def feed(
    rise: LaggedRise, values: list[float], held_at: frozenset[int] = frozenset()
) -> list[bool]:
    return [rise.add(v, k in held_at) for k, v in enumerate(values)]


def test_a_breath_at_the_lag_cancels_and_a_ramp_shows_its_rise_over_the_lag() -> None:
    breath = [5.0 * math.sin(2 * math.pi * k / LAG) for k in range(3 * LAG)]
    rise = LaggedRise(LAG)
    valid = feed(rise, breath)
    assert valid.index(True) == LAG + SMOOTH_BLOCKS  # the lagged end's mean is whole
    assert rise.y == pytest.approx(0.0, abs=1e-9)
    ramp = LaggedRise(LAG)
    feed(ramp, [0.01 * k for k in range(2 * LAG)])  # 1 mmHg/s
    assert ramp.y == pytest.approx(0.01 * LAG)


def test_a_held_block_spoils_y_now_and_one_lag_later_only() -> None:
    rise = LaggedRise(LAG)
    valid = feed(rise, [0.0] * (3 * LAG), held_at=frozenset({LAG + 50}))
    assert not valid[LAG + 50] and valid[LAG + 49] and valid[LAG + 51]
    assert not valid[2 * LAG + 50] and valid[2 * LAG + 49] and valid[2 * LAG + 51]


def test_before_its_first_mean_is_whole_no_lagged_value_is_valid() -> None:
    rise = LaggedRise(LAG)
    valid = feed(rise, [1.0] * (LAG + SMOOTH_BLOCKS + 1))
    # the first SMOOTH_BLOCKS means count as reaching back before the first block
    assert not any(valid[: LAG + SMOOTH_BLOCKS]) and valid[LAG + SMOOTH_BLOCKS]


def test_a_lag_shorter_than_its_mean_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than its mean"):
        LaggedRise(SMOOTH_BLOCKS - 1)
