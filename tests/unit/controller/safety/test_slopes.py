"""The O(1) sliding slope and mean, and the short window chosen from the swings at rest."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.safety.slopes import (
    SlidingSlope,
    breathing_slope_swing,
    quiet_window,
    sine_slope_gain,
)


@given(
    st.lists(st.floats(-1000, 1000, allow_nan=False), min_size=3, max_size=200),
    st.integers(3, 60),
)
def test_sliding_slope_equals_a_least_squares_fit(values: list[float], window: int) -> None:
    slope = SlidingSlope(window, 0.01)
    for value in values:
        got = slope.add(value)
    tail = np.array(values[-window:])
    expected = np.polyfit(np.arange(tail.size) * 0.01, tail, 1)[0]
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-4)
    assert slope.mean() == pytest.approx(float(tail.mean()), rel=1e-6, abs=1e-6)


def test_the_shortest_window_quiet_enough_for_the_fast_tests() -> None:
    """A window qualifies when Q/C is three of its swings at rest; none: the floor given."""
    swings = {0.2: 50.0, 0.3: 30.0, 0.5: 12.0, 0.75: 8.0, 1.0: 5.0}
    assert quiet_window(0.2, 40.0, swings.get) == 0.5
    assert quiet_window(0.2, 200.0, swings.get) == 0.2
    assert quiet_window(0.75, 200.0, swings.get) == 0.75  # never below the floor asked
    assert quiet_window(0.3, 10.0, swings.get) == 0.3  # none quiet enough


@pytest.mark.parametrize(
    ("window_s", "period_s"), [(4.0, 4.02), (4.0, 6.0), (4.0, 2.0), (0.5, 4.0), (1.0, 8.0)]
)
def test_the_slope_gain_of_a_sine_is_the_sliding_slopes_worst(
    window_s: float, period_s: float
) -> None:
    """The closed form against the sliding slope over every phase of a sampled sine."""
    dt = 0.01
    slope = SlidingSlope(round(window_s / dt), dt)
    t = np.arange(0.0, window_s + 2 * period_s, dt)
    seen = [abs(slope.add(float(np.sin(2 * np.pi * x / period_s)))) for x in t]
    worst = max(seen[round(window_s / dt) :])
    assert sine_slope_gain(window_s, period_s) == pytest.approx(worst, rel=0.01)


def test_a_whole_breath_in_a_4_s_slope_still_swings_it() -> None:
    """A 4 s window over a 4 s breath does not cancel it (population normal #102: 5 mmHg
    breathing swung a healthy start's 4 s slope by 2.4 mmHg/s); a short window follows the
    derivative; an irregular period is taken at its worst."""
    assert sine_slope_gain(4.0, 4.0) == pytest.approx(6.0 / (np.pi * 4.0), rel=1e-6)
    assert sine_slope_gain(0.01, 4.0) == pytest.approx(2 * np.pi / 4.0, rel=1e-3)
    periods = (3.0, 4.0, 6.0)
    assert breathing_slope_swing(4.0, 5.0, periods) == 5.0 * max(
        sine_slope_gain(4.0, p) for p in periods
    )
