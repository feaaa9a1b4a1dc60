"""Faster than real time: a scenario run with no pseudo-terminals and no host.

The NE-1000 model is programmed and started as the scenario's injection plan says,
the plant and the faults run on a virtual clock, and the ADC is sampled at 1 kHz
through the same transducer model the bridge emulator uses. Link faults have no link
to act on here; they are recorded as onsets with ``applied = False``. Used for long
scenario sweeps and to replay detectors against ground truth; a 60 s injection takes
well under a second.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from drivers.ne1000_protocol import RateUnit, best_rate_unit, format_number
from simulator.faults import FaultScheduler, FaultTargets, SensorState
from simulator.ne1000_model import NE1000Model
from simulator.plant.truth import GroundTruth
from simulator.scenario import Scenario
from simulator.transducer_model import RAW_MAX, TransducerModel

TAIL_S = 5.0


@dataclass
class OfflineResult:
    truth: GroundTruth
    sample_t_s: npt.NDArray[np.float64]
    raw_counts: npt.NDArray[np.float64]
    pump_replies: list[str] = field(default_factory=list)
    infused_ml: float = 0.0

    def raw_mmhg(self, zero_counts: float, gain: float) -> npt.NDArray[np.float64]:
        return (self.raw_counts - zero_counts) / gain


def program_pump(model: NE1000Model, scenario: Scenario, now_s: float) -> list[str]:
    """What a host does before RUN: acknowledge the power-up alarm, set DIA, RAT, VOL."""
    plan = scenario.injection
    unit = best_rate_unit(plan.rate_ml_min, (RateUnit.ML_MIN, RateUnit.UL_MIN))
    rate = plan.rate_ml_min / unit.ml_min_per_unit
    commands = [
        "",
        f"DIA{format_number(scenario.diameter_mm)}",
        f"RAT{format_number(rate)}{unit.value}",
        "VOLML",
        f"VOL{format_number(plan.volume_ml)}",
    ]
    return [model.handle(command, now_s) for command in commands]


def run_offline(
    scenario: Scenario, *, duration_s: float | None = None, sample_hz: float = 1000.0
) -> OfflineResult:
    plant = scenario.build_plant(t0_s=0.0)
    model = NE1000Model(plant=plant)
    model.now_s = 0.0
    transducer = scenario.transducer.model()
    sensor = SensorState()
    deferred: list[Callable[[], None]] = []
    targets = FaultTargets(
        plant, transducer, pump_model=model, sensor=sensor, defer=deferred.append
    )
    FaultScheduler(scenario.faults, targets)
    replies = program_pump(model, scenario, 0.0)
    plan = scenario.injection
    end_s = duration_s or plan.start_s + 60.0 * plan.volume_ml / plan.rate_ml_min + TAIL_S
    rng = random.Random(scenario.seed)
    times, raws = array("d"), array("d")
    period_s, started, last_raw = 1.0 / sample_hz, False, 0
    for k in range(int(end_s * sample_hz) + 1):
        t = k * period_s
        if not started and t >= plan.start_s:
            replies.append(model.handle("RUN", t))
            started = True
        model.advance(t)
        plant.advance_to(t, 0.0)
        while deferred:
            deferred.pop(0)()
        last_raw = adc_sample(plant.transducer_mmhg(), transducer, sensor, last_raw, rng)
        times.append(t)
        raws.append(last_raw)
    return OfflineResult(
        plant.truth,
        np.frombuffer(times, dtype=np.float64).copy(),
        np.frombuffer(raws, dtype=np.float64).copy(),
        replies + list(model.unprompted),
        model.infused_ml,
    )


def adc_sample(
    pressure_mmhg: float,
    transducer: TransducerModel,
    sensor: SensorState,
    last_raw: int,
    rng: random.Random,
) -> int:
    if sensor.stuck:
        return last_raw
    if sensor.sensor_open or sensor.saturated:
        return RAW_MAX
    return transducer.raw(pressure_mmhg, rng)
