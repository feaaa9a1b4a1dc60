"""Pressure-limited infusion: the limiter's law on its own, closed loop through the real
controller against stop-at-the-limit, and through the real drivers on the emulated pump."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.closed_loop import Case, run_case
from controller.injection import State
from controller.records.queries import read_rows
from controller.safety.pressure_limit import PressureLimitConfig, PressureLimiter, RateChange
from controller.safety.verdict import Verdict
from simulator.plant.spread import PINNED
from simulator.rig import SimRig
from simulator.scenario import load_scenario
from tests.support.controller_rig import controller_on_virtual, on_virtual_rig, request


def test_the_rate_falls_near_the_ceiling_and_comes_back_when_there_is_room() -> None:
    limiter = PressureLimiter(100.0, 2.0, rest_mmhg=10.0, min_rate_ml_min=0.01)
    t = 0.0
    for _ in range(50):  # 10 s at 95 mmHg: above the 91 mmHg setpoint
        t += 0.2
        assert limiter.step(t, 95.0) is None
    low = limiter.commanded
    assert low < 2.0 and limiter.limiting
    for _ in range(100):  # 20 s at 40 mmHg: plenty of room
        t += 0.2
        limiter.step(t, 40.0)
    assert limiter.commanded == 2.0 and not limiter.limiting


def test_rate_changes_are_bounded_per_second() -> None:
    config = PressureLimitConfig(max_fall_per_s=1.0, max_rise_per_s=0.25)
    limiter = PressureLimiter(100.0, 4.0, 0.0, 0.01, config)
    t, previous = 0.0, 4.0
    for _ in range(30):
        t += 0.2
        limiter.step(t, 300.0)  # far over: the law wants to drop at once
        assert previous - limiter.rate <= 1.0 * 4.0 * 0.2 + 1e-9
        previous = limiter.rate
    for _ in range(30):
        t += 0.2
        limiter.step(t, 0.0)  # far under: it may not jump back
        assert limiter.rate - previous <= 0.25 * 4.0 * 0.2 + 1e-9
        previous = limiter.rate


def test_a_line_that_cannot_be_held_even_at_the_minimum_rate_is_an_occlusion() -> None:
    limiter = PressureLimiter(100.0, 1.0, 0.0, 0.01, PressureLimitConfig(hold_s=5.0))
    verdicts: list[tuple[float, Verdict]] = []
    t = 0.0
    while t < 60.0 and not verdicts:
        t += 0.01
        found = limiter.step(t, 150.0)
        if found is not None:
            verdicts.append((t, found))
    assert verdicts, "never called it an occlusion"
    t_found, verdict = verdicts[0]
    assert verdict.kind == "occlusion" and "minimum rate" in verdict.detail
    first_at_min = next(c.t_mono_s for c in limiter.changes if c.rate_ml_min == limiter.min_rate)
    assert t_found - first_at_min == pytest.approx(5.0, abs=0.25)


def test_changes_are_only_sent_when_they_matter() -> None:
    limiter = PressureLimiter(100.0, 1.0, 0.0, 0.01)
    t = 0.0
    for _ in range(20):
        t += 0.2
        limiter.step(t, 89.5)  # just under the 90 mmHg setpoint: tiny corrections
    assert all(isinstance(c, RateChange) for c in limiter.changes)
    assert len(limiter.changes) == 0


@pytest.mark.parametrize("limited", [False, True])
def test_limited_delivers_under_the_ceiling_where_stopping_does_not(limited: bool) -> None:
    """Through the real controller on the virtual clock: 1 mL/min would reach 90 mmHg."""
    scenario = load_scenario("normal-liver-saline-1ml").model_copy(update={"truth": PINNED})
    field = "pressure_ceiling_mmhg" if limited else "pressure_limit_mmhg"
    result = run_case(Case(scenario, request={field: 60.0}))
    assert result.error is None, result.error
    if limited:
        assert result.state == "completed", result.detail
        assert result.recorded_ml == pytest.approx(1.0, abs=0.005)
        assert result.peak_mmhg <= 63.0 and result.rate_changes > 0
    else:
        assert result.verdict == "over_pressure" and result.recorded_ml < 0.3


@pytest.mark.virtual_clock
def test_pressure_limited_injection_through_the_drivers(tmp_path: Path) -> None:
    """At 2 mL/min this line would climb past 100 mmHg; with a 60 mmHg ceiling the
    controller slows the emulated pump (RAT while running), records each change, and the
    true line pressure stays under the ceiling with no alarm. On the virtual clock, the rig
    on memory ports."""

    async def body(sim_rig: SimRig) -> None:
        async with controller_on_virtual(sim_rig, tmp_path / "db.sqlite") as controller:
            injection = controller.create_injection(
                request(volume_ml=1.0, rate_ml_min=2.0, pressure_ceiling_mmhg=60.0)
            )
            await controller.start_injection(injection.id)
            limiter = controller.supervisor.limiter
            assert limiter is not None
            await sim_rig.until(lambda: limiter.commanded < 1.5, 30)
            await sim_rig.until(lambda: sim_rig.plant.delivered_ml > 0.25, 40)
            pump_rate = sim_rig.pump.model.settings.rate_value * (
                sim_rig.pump.model.settings.rate_unit.ml_min_per_unit
            )
            assert pump_rate < 2.0 and controller.alarm is None, controller.alarm
            assert injection.rate_now_ml_min == pytest.approx(pump_rate, rel=0.01)
            assert injection.state is State.RUNNING
            await controller.stop_injection(injection.id)
            await controller.recorder.sync()
            rows = await controller.recorder.read(
                read_rows,
                "SELECT count(*) FROM events WHERE kind = 'rate_changed' AND injection_id = ?",
                (injection.id,),
            )
            assert rows[0][0] >= 1
        truth = sim_rig.truth.arrays()
        assert (truth["p_line_mmhg"] + sim_rig.scenario.params().hydrostatic_mmhg).max() < 60.0

    on_virtual_rig(body)
