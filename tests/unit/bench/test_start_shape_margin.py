"""The margin bench's arithmetic: how many swings of error a healthy start needs to explain
three slopes, and the hold that a verdict needs."""

from __future__ import annotations

import math

from bench.start_shape_margin import Recording, held_margins, margin_swings
from controller.safety.start_shape import (
    PERSIST_S,
    RISING_ERRORS,
    SAMPLE_S,
    SPAN_S,
    StartShape,
)


def test_a_healthy_start_needs_no_margin_and_a_bent_one_needs_what_the_bound_says() -> None:
    assert margin_swings(10.0, 8.0, 6.4, 0.4) == 0.0  # a single exponential: on the bound
    margin = margin_swings(10.0, 8.0, 5.0, 0.4)
    assert margin > 0.0
    bound = StartShape.lowest_healthy_mmhg_s(10.0, 8.0, margin * 0.4)
    assert bound is not None and math.isclose(bound, 5.0, abs_tol=1e-6)
    # however bent, no error at which the start no longer rises enough to be tested counts
    cap = 8.0 / RISING_ERRORS / 0.4
    assert math.isclose(margin_swings(10.0, 8.0, 0.0, 0.4), cap, rel_tol=1e-6)


def test_the_margin_held_is_the_least_over_the_persistence() -> None:
    """A slope that bends for good at 20 s, and one bent for a single sample."""
    times = [4.5 + SAMPLE_S * i for i in range(400)]

    def decaying(t: float) -> float:
        return 16.0 * math.exp(-t / 20.0)

    bent = [decaying(t) * (0.5 if t >= 20.0 else 1.0) for t in times]
    blip = [decaying(t) * (0.5 if i == 200 else 1.0) for i, t in enumerate(times)]
    held = held_margins(Recording("bent", times, list(bent), 0.4, 20.0, None))
    held_blip = held_margins(Recording("blip", times, list(blip), 0.4, None, None))
    assert max(held) > 1.0
    first = next(t for t, m in zip(times, held, strict=True) if m > 0.0)
    assert 20.0 + PERSIST_S - SAMPLE_S <= first <= 20.0 + SPAN_S + PERSIST_S
    assert max(held_blip) == 0.0
