"""Offline closed loop for pressure-limited infusion: the limiter and the plant, faster
than real time, against plain stop-at-the-limit in the same scenario.

The pump model takes the limiter's rate changes as ``RAT`` commands while it runs (the
NE-1000 accepts them in the running unit), the transducer reading goes through the same
conditioner the supervisor uses (10 ms block medians, 250 ms running median).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from controller.safety.detectors import Conditioner
from controller.safety.pressure_limit import PressureLimitConfig, PressureLimiter, RateChange
from drivers.ne1000_protocol import format_number, rate_limits_ml_min
from simulator.closed_loop import BASELINE_S, TAIL_S, offline_devices
from simulator.faults import SensorState
from simulator.offline import adc_sample, program_pump
from simulator.scenario import Scenario

MAX_S = 1800.0


@dataclass
class LimitedResult:
    completed: bool
    stopped_s: float | None  # stop-at-limit: when the limit stopped the pump
    verdict: str | None
    delivered_ml: float
    peak_mmhg: float  # the true line pressure at the transducer
    duration_s: float
    at_planned_s: float  # time spent infusing at the planned rate
    infusing_s: float
    changes: list[RateChange] = field(default_factory=list)
    max_step_ml_min_per_s: float = 0.0

    @property
    def reversals_per_min(self) -> float:
        """How often the rate turned from falling to rising or back: hunting, if high."""
        steps = [b.rate_ml_min - a.rate_ml_min for a, b in itertools.pairwise(self.changes)]
        turns = sum(1 for a, b in itertools.pairwise(steps) if a * b < 0)
        return 60.0 * turns / max(self.infusing_s, 1.0)


def run_limited(
    scenario: Scenario,
    ceiling_mmhg: float,
    *,
    limited: bool,
    seed: int = 1,
    config: PressureLimitConfig | None = None,
) -> LimitedResult:
    """``limited``: hold under the ceiling by slowing down; else stop when it is crossed."""
    scenario, plant, pump, transducer = offline_devices(scenario, seed)
    plan = scenario.injection
    program_pump(pump, scenario, 0.0)
    conditioner, sensor, rng = Conditioner(), SensorState(), random.Random(seed)
    gain, zero = (
        transducer.counts_per_mmhg,
        transducer.zero_offset_mmhg * transducer.counts_per_mmhg,
    )
    limiter: PressureLimiter | None = None
    last_raw, started, stopped_s, verdict = 0, False, None, None
    at_planned = infusing = 0.0
    rest = 0.0
    end_s = BASELINE_S + 60.0 * plan.volume_ml / plan.rate_ml_min * 20 + TAIL_S
    for k in range(int(min(end_s, MAX_S) * 1000)):
        t = k / 1000.0
        if not started and t >= BASELINE_S:
            started, rest = True, conditioner.filtered
            pump.handle("RUN", t)
            low, _ = rate_limits_ml_min(pump.settings.diameter_mm)
            limiter = PressureLimiter(ceiling_mmhg, plan.rate_ml_min, rest, low, config)
        pump.advance(t)
        plant.advance_to(t, 0.0)
        last_raw = adc_sample(plant.transducer_mmhg(), transducer, sensor, last_raw, rng)
        block = conditioner.add((last_raw - zero) / gain)
        if started and pump.status.moving:
            infusing += 0.001
            rate_now = limiter.commanded if limiter is not None and limited else plan.rate_ml_min
            at_planned += 0.001 if rate_now >= plan.rate_ml_min - 1e-9 else 0.0
        if not (started and block and pump.status.moving and limiter is not None):
            if started and not pump.status.moving and t > BASELINE_S + 1.0:
                break
            continue
        if not limited:
            if conditioner.filtered >= ceiling_mmhg:
                pump.handle("STP", t)
                stopped_s, verdict = t - BASELINE_S, "over_pressure"
            continue
        before = len(limiter.changes)
        found = limiter.step(t, conditioner.filtered)
        if len(limiter.changes) > before:
            unit = pump.settings.rate_unit  # the pump keeps its unit while running
            pump.handle(f"RAT{format_number(limiter.commanded / unit.ml_min_per_unit)}", t)
        if found is not None:
            pump.handle("STP", t)
            stopped_s, verdict = t - BASELINE_S, found.kind
    truth = plant.truth.arrays()
    changes = limiter.changes if limiter is not None else []
    return LimitedResult(
        completed=verdict is None and plant.delivered_ml >= plan.volume_ml - 0.005,
        stopped_s=stopped_s,
        verdict=verdict,
        delivered_ml=plant.delivered_ml,
        peak_mmhg=float((truth["p_line_mmhg"] + scenario.params().hydrostatic_mmhg).max()),
        duration_s=infusing,
        at_planned_s=at_planned,
        infusing_s=infusing,
        changes=changes,
        max_step_ml_min_per_s=_max_step(changes, plan.rate_ml_min),
    )


def _max_step(changes: list[RateChange], planned: float) -> float:
    worst, prev = 0.0, (changes[0].t_mono_s - 1.0, planned) if changes else (0.0, planned)
    for change in changes:
        dt = max(change.t_mono_s - prev[0], 1e-3)
        worst = max(worst, abs(change.rate_ml_min - prev[1]) / max(dt, 1.0))
        prev = (change.t_mono_s, change.rate_ml_min)
    return worst
