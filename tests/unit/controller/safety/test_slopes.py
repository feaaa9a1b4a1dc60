"""The O(1) sliding slope and mean, and the short window chosen from the swings at rest."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.safety.slopes import SlidingSlope, quiet_window


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
