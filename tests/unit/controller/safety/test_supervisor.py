"""The supervisor: one latched verdict, no infusion begun while latched, faults of its own."""

from __future__ import annotations

import numpy as np

from controller.safety.line_model import LinePrior
from controller.safety.supervisor import FAST_START_AFTER_S, Supervisor, SupervisorConfig
from controller.safety.verdict import Verdict, VerdictKind

PRIOR = LinePrior(1e-3, 1200.0)


def test_verdicts_latch_until_acknowledged() -> None:
    verdicts: list[Verdict] = []
    supervisor = Supervisor(SupervisorConfig(), verdicts.append)
    supervisor.on_delivery(10.0, 0.100, 0.105)  # within 20 uL
    assert not verdicts
    supervisor.on_delivery(10.0, 0.050, 0.200)
    supervisor.on_pump_lost(11.0, "timeout")
    assert [v.kind for v in verdicts] == [VerdictKind.PUMP_FAULT]
    assert supervisor.acknowledge() is not None
    supervisor.on_pump_lost(12.0, "timeout")
    assert [v.kind for v in verdicts] == [VerdictKind.PUMP_FAULT, VerdictKind.LINK_LOST]


def test_no_infusion_begins_while_a_verdict_is_latched() -> None:
    """A start that raced an alarm must not re-arm the detectors (issue 18, item 1)."""
    supervisor = Supervisor(SupervisorConfig(), lambda verdict: None)
    supervisor.on_pump_lost(1.0, "timeout")
    assert not supervisor.begin_infusion(2.0, 1.0, PRIOR)
    assert not supervisor.infusing


def test_a_software_fault_is_an_alarm_like_any_other() -> None:
    verdicts: list[Verdict] = []
    supervisor = Supervisor(SupervisorConfig(), verdicts.append)
    supervisor.on_software_fault(3.0, "the pump watch", ZeroDivisionError("division by zero"))
    assert verdicts and verdicts[0].kind is VerdictKind.SOFTWARE_FAULT
    assert "the pump watch raised ZeroDivisionError" in verdicts[0].detail


def test_the_rest_must_settle_before_a_first_fill() -> None:
    supervisor = Supervisor(SupervisorConfig(), lambda verdict: None)
    for k in range(200):  # two seconds of a line still refilling
        supervisor.on_sample(k, k * 0.001, 0.05 * k, k)
    status = supervisor.rest_status()
    assert not status.settled and "settling" in status.why_not_settled()


def test_later_fills_keep_the_swing_the_first_fill_measured_for_each_window() -> None:
    """Between radial aliquots the line is not at rest, so later fills reuse what the first
    fill measured. Each window keeps its own swing: the short slope's swing was once
    replaced by the 4 s slope's (the last one measured), far smaller, which let the fast
    tests apply on aliquots where breathing swings the short slope as fast as Q/C."""
    supervisor = Supervisor(SupervisorConfig(), lambda verdict: None)
    t = np.arange(0.0, 12.0, 0.001)
    breathing = 20.0 + 3.0 * np.sin(2 * np.pi * 0.25 * t) + 1.0 * np.sin(2 * np.pi * 1.2 * t)
    for k, (t_s, p) in enumerate(zip(t, breathing, strict=True)):
        supervisor.on_sample(k, float(t_s), float(p), k)
    assert supervisor.begin_infusion(12.0, 1.0, PRIOR)
    first = (
        supervisor.line.short_window_s,
        supervisor.line.slope_swing,
        supervisor.line.long_swing,
    )
    assert first[1] > 2 * first[2] > 0.0  # a short slope swings more than a 4 s one
    supervisor.end_infusion()
    assert supervisor.begin_infusion(20.0, 1.0, PRIOR, first_fill=False)
    later = (
        supervisor.line.short_window_s,
        supervisor.line.slope_swing,
        supervisor.line.long_swing,
    )
    assert later == first


def test_only_a_first_fill_has_its_start_shape_tested() -> None:
    """The start-shape test needs the line's step response from rest: a later fill starts
    from a line still decaying from the last. A fill asked as a later one with no first
    fill's reference is learnt as a first (its swings measured at rest, not the empty set
    kept from no first fill) and its start is tested."""
    supervisor = Supervisor(SupervisorConfig(), lambda verdict: None)
    t = np.arange(0.0, 12.0, 0.001)
    breathing = 20.0 + 3.0 * np.sin(2 * np.pi * 0.25 * t)
    for k, (t_s, p) in enumerate(zip(t, breathing, strict=True)):
        supervisor.on_sample(k, float(t_s), float(p), k)
    assert supervisor.begin_infusion(12.0, 1.0, PRIOR, first_fill=False)
    assert supervisor.line.long_swing > 0.0
    assert supervisor.start_shape.take(12.0 + FAST_START_AFTER_S, 5.0)
    supervisor.end_infusion()
    assert supervisor.begin_infusion(30.0, 1.0, PRIOR, first_fill=False)
    assert not supervisor.start_shape.take(30.0 + FAST_START_AFTER_S, 5.0)
