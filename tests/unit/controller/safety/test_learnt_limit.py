"""A levelled line's CUSUM limit learnt on that line: listened to first, never above the
rest's limit nor under its floor, raised by later swings once they are old enough."""

from __future__ import annotations

import pytest

from controller.safety.learnt_limit import LearningRule, LearntLimit, StepHold, listening_s
from controller.safety.timebase import BLOCK_S

RULE = LearningRule(
    margin=1.4, offset_mmhg=4.0, floor_envelopes=0.5, listen_breaths=1.0, listen_min_s=4.0
)
REST_LIMIT_MMHG = 12.0
ENVELOPE_MMHG = 4.0


def _run(limit: LearntLimit, t0: float, seconds: float, cusum_mmhg: float) -> float:
    """``seconds`` of blocks with the CUSUM at ``cusum_mmhg``; the limit at the last one."""
    value = float("nan")
    for k in range(round(seconds / BLOCK_S)):
        value = limit.limit_mmhg(t0 + k * BLOCK_S, cusum_mmhg, REST_LIMIT_MMHG, ENVELOPE_MMHG)
    return value


def test_it_listens_for_a_breath_at_least_its_minimum() -> None:
    assert listening_s(5.0, 1.0, 4.0) == 5.0
    assert listening_s(3.0, 1.0, 4.0) == 4.0  # a short breath: the minimum
    assert listening_s(0.0, 1.0, 4.0) == 4.0  # no breathing found at rest


def test_the_rest_limit_holds_while_listening_then_what_the_cusum_did_there() -> None:
    limit = LearntLimit(RULE)
    limit.learn(breath_s=5.0)
    assert _run(limit, 0.0, 4.9, cusum_mmhg=3.0) == REST_LIMIT_MMHG
    assert _run(limit, 4.9, 0.2, cusum_mmhg=0.0) == pytest.approx(1.4 * 3.0 + 4.0)


def test_the_learnt_limit_is_never_above_the_rest_limit_nor_under_its_floor() -> None:
    deep = LearntLimit(RULE)
    _run(deep, 0.0, 4.0, cusum_mmhg=9.0)  # 1.4 x 9 + 4 = 16.6, over the rest's 12
    assert _run(deep, 4.0, 0.1, cusum_mmhg=0.0) == REST_LIMIT_MMHG
    calm = LearntLimit(RULE)
    _run(calm, 0.0, 4.0, cusum_mmhg=0.0)  # nothing seen: half an envelope + the offset
    assert _run(calm, 4.0, 0.1, cusum_mmhg=0.0) == pytest.approx(0.5 * ENVELOPE_MMHG + 4.0)


def test_a_deeper_swing_later_raises_it_once_old_enough_and_a_new_fill_listens_again() -> None:
    limit = LearntLimit(RULE)
    _run(limit, 0.0, 4.0, cusum_mmhg=2.0)
    first = _run(limit, 4.0, 0.1, cusum_mmhg=0.0)
    _run(limit, 4.1, 0.5, cusum_mmhg=4.0)  # a deeper swing: not yet counted
    assert _run(limit, 4.6, 0.5, cusum_mmhg=0.0) == pytest.approx(first)
    assert _run(limit, 5.1, 2.0, cusum_mmhg=0.0) == pytest.approx(1.4 * 4.0 + 4.0)
    limit.reset()
    assert _run(limit, 20.0, 1.0, cusum_mmhg=0.0) == REST_LIMIT_MMHG


def test_what_is_not_learnt_from_does_not_raise_it() -> None:
    limit = LearntLimit(RULE)
    t = 0.0
    for _ in range(round(4.0 / BLOCK_S)):
        limit.limit_mmhg(t, 8.0, REST_LIMIT_MMHG, ENVELOPE_MMHG, learn=False)
        t += BLOCK_S
    assert _run(limit, t, 0.1, cusum_mmhg=0.0) == pytest.approx(0.5 * ENVELOPE_MMHG + 4.0)


def test_a_step_hold_lasts_its_time_from_the_last_step_beyond_its_size() -> None:
    hold = StepHold(0.4)
    assert not hold.held(0.0, 1.9, beyond_mmhg=2.0)
    assert hold.held(1.0, 2.1, beyond_mmhg=2.0)
    assert hold.held(1.39, 0.0, beyond_mmhg=2.0)
    assert not hold.held(1.41, 0.0, beyond_mmhg=2.0)
