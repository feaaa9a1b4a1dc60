"""The start's shape: a healthy start's slope (a positive sum of decaying exponentials, plus a
creep) never breaks the log-convexity bound, whatever error within the margin rides on it;
a start whose target is lowered part way (the needle out of the tumour) does, and is a leak."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.safety.start_shape import (
    PERSIST_S,
    SPAN_S,
    SWING_FLOOR_MMHG_S,
    SWINGS,
    StartShape,
)
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import Verdict, VerdictKind

AFTER_S = 4.5
SWING_MMHG_S = 0.3  # under the floor: the floor sets the error
ERROR_MMHG_S = SWINGS * max(SWING_MMHG_S, SWING_FLOOR_MMHG_S)


TAU_S = 20.0  # C x R: a viscous line, C = 1 uL/mmHg, R = 20 000 mmHg s/mL
FULL_MMHG_S = 16.0  # Q/C at about 1 mL/min
CREEP_MMHG_S = 0.3


def healthy_slope(t: float) -> float:
    """A viscous line's start: Q/C decaying over C x R, and the tissue's creep."""
    return FULL_MMHG_S * math.exp(-t / TAU_S) + CREEP_MMHG_S


def needle_out_slope(t: float, at_s: float) -> float:
    """The same start, the needle leaving the tumour at ``at_s``: R falls from 20 000 to
    12 800 (the tissue's share gone), so the level the line rises to falls from Q x R =
    320 mmHg to 205 while the line stands at 169: it still rises, but towards the lower
    level, over the shorter C x R'."""
    if t < at_s:
        return healthy_slope(t)
    tau_out_s = 12.8
    p_at = FULL_MMHG_S * TAU_S * (1.0 - math.exp(-at_s / TAU_S))
    left_mmhg = FULL_MMHG_S * tau_out_s - p_at
    return left_mmhg / tau_out_s * math.exp(-(t - at_s) / tau_out_s) + CREEP_MMHG_S


def run(
    slope_at: Callable[[float], float | None],
    seconds: float,
    *,
    first_fill: bool = True,
    error_mmhg_s: float = 0.0,
) -> Verdict | None:
    """Feed the test block by block from a start at t = 0; the verdict, if any. ``error``:
    a slow wander of the breath-cancelled slope within ± that (irregular breathing)."""
    shape = StartShape()
    shape.start(0.0, first_fill=first_fill, after_s=AFTER_S, swing_mmhg_s=SWING_MMHG_S)
    wander = random.Random(7)
    offset = 0.0
    for k in range(1, round(seconds / BLOCK_S)):
        t = k * BLOCK_S
        if k % 50 == 0:  # a new breath every half second, each off by a different amount
            offset = wander.uniform(-error_mmhg_s, error_mmhg_s)
        slope = slope_at(t)
        verdict = shape.on_block(t, None if slope is None else slope + offset)
        if verdict is not None:
            return verdict
    return None


def test_a_healthy_start_with_breathing_on_its_slope_is_left_alone() -> None:
    assert run(healthy_slope, 90.0, error_mmhg_s=0.9 * ERROR_MMHG_S) is None


def test_a_start_whose_target_drops_is_a_leak_within_its_persistence() -> None:
    verdict = run(lambda t: needle_out_slope(t, 15.0), 60.0, error_mmhg_s=0.5 * ERROR_MMHG_S)
    assert verdict is not None and verdict.kind is VerdictKind.LEAK
    assert 15.0 + PERSIST_S <= verdict.t_mono_s <= 15.0 + 2 * SPAN_S + PERSIST_S
    assert "needle out of the tumour" in verdict.detail
    assert verdict.values["slope_mmhg_s"] < verdict.values["bound_mmhg_s"]


def test_a_later_fill_starts_from_a_decaying_line_and_is_not_tested() -> None:
    assert run(lambda t: needle_out_slope(t, 15.0), 60.0, first_fill=False) is None


def test_no_breath_cancelled_slope_no_test() -> None:
    assert run(lambda t: None, 60.0) is None


def test_a_bend_shorter_than_its_persistence_is_not_a_leak() -> None:
    """An irregular breath: the slope dips for a second and comes back."""

    def dipped(t: float) -> float:
        return healthy_slope(t) - (3.0 if 20.0 <= t < 21.0 else 0.0)

    assert run(dipped, 60.0) is None


@settings(max_examples=300, deadline=None)
@given(
    amplitudes=st.lists(st.floats(0.01, 200.0), min_size=1, max_size=3),
    rates=st.lists(st.floats(0.005, 2.0), min_size=3, max_size=3),
    creep=st.floats(0.0, 2.0),
    t0=st.floats(0.0, 60.0),
    span=st.floats(0.5, 5.0),
    error=st.floats(0.01, 3.0),
    errors=st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3),
)
def test_the_bound_holds_for_any_healthy_start_and_error_within_the_margin(
    *,
    amplitudes: list[float],
    rates: list[float],
    creep: float,
    t0: float,
    span: float,
    error: float,
    errors: list[float],
) -> None:
    """A positive sum of decaying exponentials plus a constant, each point off by up to the
    error: the third point is never under the bound the first two set."""

    def slope(t: float) -> float:
        return creep + sum(a * math.exp(-r * t) for a, r in zip(amplitudes, rates, strict=False))

    s1, s2, s3 = (slope(t0 + i * span) + error * errors[i] for i in range(3))
    bound = StartShape.lowest_healthy_mmhg_s(s1, s2, error)
    assert bound is None or s3 >= bound - 1e-9 * max(1.0, abs(bound))
