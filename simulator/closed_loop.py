"""A scenario run offline with a safety supervisor in the loop, faster than real time.

The plant, the pump model and the faults run on a virtual 1 kHz clock; every ADC
sample goes through a perfect calibration to the supervisor, whose verdict stops the
pump model at the same sample (the software path from sample to STP is measured on its
own in ``bench/``). Used by the supervisor benchmark and the detector tests to measure
detection latency against the true fault onset, false alarms, and delivered volume.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from controller.safety.line_model import LinePrior
from controller.safety.verdict import Verdict
from simulator.faults import FaultScheduler, FaultTargets, SensorState
from simulator.ne1000_model import NE1000Model
from simulator.offline import adc_sample, program_pump
from simulator.plant.model import Plant
from simulator.plant.truth import FaultOnset, GroundTruth
from simulator.scenario import Scenario
from simulator.transducer_model import TransducerModel

BASELINE_S = 6.0  # the operator zeroes, places the needle and waits before starting
DIS_PERIOD_S = 0.25
TAIL_S = 3.0


class SupervisorLike(Protocol):
    def on_sample(self, index: int, t: float, pressure_mmhg: float, raw: int) -> None: ...
    def begin_infusion(self, t: float, rate_ml_min: float, prior: LinePrior) -> None: ...
    def end_infusion(self) -> None: ...
    def on_pump_alarm(self, t: float, alarm: str) -> None: ...
    def on_delivery(self, t: float, dispensed_ml: float, expected_ml: float) -> None: ...


@dataclass
class LoopResult:
    scenario: str
    seed: int
    verdict: Verdict | None
    onset: FaultOnset | None
    delivered_ml: float
    truth: GroundTruth

    @property
    def latency_s(self) -> float | None:
        if self.verdict is None or self.onset is None:
            return None
        return self.verdict.t_mono_s - self.onset.t_s


def line_prior(scenario: Scenario) -> LinePrior:
    """What a controller knows before it starts: catalog compliance and Hagen-Poiseuille R."""
    p = scenario.params()
    return LinePrior(p.c_line, p.r_needle + p.r_extension)


def offline_devices(
    scenario: Scenario, seed: int | None
) -> tuple[Scenario, Plant, NE1000Model, TransducerModel]:
    """The scenario (with this seed, its start after the baseline), its plant and the pump
    model and transducer on it, all on an offline clock starting at 0."""
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    plan = scenario.injection.model_copy(update={"start_s": BASELINE_S})
    scenario = scenario.model_copy(update={"injection": plan})
    plant = scenario.build_plant(t0_s=0.0)
    pump = NE1000Model(plant=plant)
    pump.now_s = 0.0
    return scenario, plant, pump, scenario.transducer.model()


def run_closed_loop(
    scenario: Scenario,
    make_supervisor: Callable[[Callable[[Verdict], None]], SupervisorLike],
    *,
    seed: int | None = None,
    relief_ml: Callable[[Verdict], float] | None = None,
) -> LoopResult:
    scenario, plant, pump, transducer = offline_devices(scenario, seed)
    plan = scenario.injection
    sensor = SensorState()
    deferred: list[Callable[[], None]] = []
    FaultScheduler(
        scenario.faults,
        FaultTargets(plant, transducer, pump_model=pump, sensor=sensor, defer=deferred.append),
    )
    program_pump(pump, scenario, 0.0)
    verdicts: list[Verdict] = []

    def stop(verdict: Verdict) -> None:
        verdicts.append(verdict)
        pump.handle("STP", verdict.t_mono_s)
        if relief_ml is not None and verdict.kind in ("occlusion", "over_pressure"):
            volume = relief_ml(verdict)
            if volume >= 0.002:
                deferred.append(lambda: _withdraw(pump, volume, verdict.t_mono_s))

    supervisor = make_supervisor(stop)
    gain = transducer.counts_per_mmhg
    zero = transducer.zero_offset_mmhg * gain  # zeroed to atmosphere before the needle went in
    rng = random.Random(scenario.seed)
    end_s = BASELINE_S + 60.0 * plan.volume_ml / plan.rate_ml_min + TAIL_S
    infusing, last_raw, alarms_seen, next_dis = False, 0, 0, BASELINE_S + DIS_PERIOD_S
    prior = line_prior(scenario)
    for k in range(int(end_s * 1000) + 1):
        t = k / 1000.0
        if not infusing and not verdicts and abs(t - BASELINE_S) < 5e-4:
            pump.handle("RUN", t)
            supervisor.begin_infusion(t, plan.rate_ml_min, prior)
            infusing = True
        pump.advance(t)
        plant.advance_to(t, 0.0)
        while deferred:
            deferred.pop(0)()
        last_raw = adc_sample(plant.transducer_mmhg(), transducer, sensor, last_raw, rng)
        supervisor.on_sample(k, t, (last_raw - zero) / gain, last_raw)
        if len(pump.unprompted) > alarms_seen:
            alarms_seen = len(pump.unprompted)
            supervisor.on_pump_alarm(t, pump.unprompted[-1])
        if infusing and t >= next_dis:
            next_dis += DIS_PERIOD_S
            expected = min(plan.volume_ml, plan.rate_ml_min * (t - BASELINE_S) / 60.0)
            supervisor.on_delivery(t, pump.infused_ml, expected)
        if infusing and not pump.status.moving:
            infusing = False
            supervisor.end_infusion()
    verdict = verdicts[0] if verdicts else None
    onset = plant.truth.onsets[0] if plant.truth.onsets else None
    return LoopResult(scenario.name, scenario.seed, verdict, onset, plant.delivered_ml, plant.truth)


def _withdraw(pump: NE1000Model, volume_ml: float, t: float) -> None:
    """Momentary reverse, as the controller's relief does: the pump's VOL target bounds it."""
    pump.handle("STP", t)
    pump.handle("DIRWDR", t)
    pump.handle("RAT1.000MM", t)
    pump.handle("VOLML", t)
    pump.handle(f"VOL{volume_ml:.3f}", t)
    pump.handle("RUN", t)
