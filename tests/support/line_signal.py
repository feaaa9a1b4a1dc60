"""Pressure signals for the detectors' unit tests: the simulator's plant, open loop.

The plant (two nodes, Hagen-Poiseuille needle, tissue) is stepped at 1 kHz with the pump's
flow switched on at ``start_s``; artifacts and noise are added as a transducer reads them;
a fault may change the physics at ``fault_s``. ``feed`` hands the samples to a supervisor
the way the bridge does and begins the infusion at the start, returning the first
verdict. No controller and no pump are involved: these tests are of the detectors alone
(the closed loop through the real controller is in ``tests/integration``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.device_ops import line_prior
from controller.safety.supervisor import Supervisor, SupervisorConfig
from controller.safety.verdict import Verdict
from simulator.plant.artifacts import ArtifactConfig
from simulator.plant.model import Plant
from simulator.plant.spread import PINNED, TruthSpread
from simulator.scenario import InjectionPlan, Scenario

FloatArray = npt.NDArray[np.float64]
BODY = ArtifactConfig(respiration_mmhg=3.0, respiration_hz=0.25, cardiac_mmhg=1.5, cardiac_hz=1.2)


@dataclass
class LineCase:
    rate_ml_min: float = 1.0
    syringe: str = "bd-luerlok-5ml"
    needle: str = "22g-coaxial-150mm"
    drug: str = "saline-37c"
    tissue: str = "liver"
    artifacts: ArtifactConfig = BODY
    noise_mmhg_rms: float = 0.3
    truth: TruthSpread = PINNED
    rest_s: float = 12.0  # the line at rest (settled: 10 s at least) before the pump starts
    run_s: float = 30.0
    fault_s: float | None = None  # seconds after the start
    fault: Callable[[Plant], None] | None = None
    stop_s: float | None = None  # the pump stops by itself (its target) this long after the start
    seed: int = 1

    def scenario(self) -> Scenario:
        return Scenario(
            name="line-signal",
            seed=self.seed,
            syringe=self.syringe,
            needle=self.needle,
            drug=self.drug,
            tissue=self.tissue,
            truth=self.truth,
            injection=InjectionPlan(volume_ml=5.0, rate_ml_min=self.rate_ml_min),
            artifacts=self.artifacts,
        )


def signal(case: LineCase) -> tuple[FloatArray, FloatArray]:
    """(times, pressures) at 1 kHz: rest, then the pump on at ``rest_s``."""
    plant = case.scenario().build_plant(t0_s=0.0, truth_every_s=0.01)
    noise = random.Random(case.seed)
    q_ml_s = case.rate_ml_min / 60.0
    n = round((case.rest_s + case.run_s) * 1000)
    times = np.arange(n) / 1000.0
    out = np.empty(n)
    faulted = False
    for k, t in enumerate(times):
        since = t - case.rest_s
        pumping = since >= 0.0 and (case.stop_s is None or since < case.stop_s)
        due = case.fault_s is not None and since >= case.fault_s
        if case.fault is not None and due and not faulted:
            case.fault(plant)
            faulted = True
        plant.advance_to(t, q_ml_s * 0.001 if pumping and k else 0.0)
        out[k] = plant.transducer_mmhg() + noise.gauss(0.0, case.noise_mmhg_rms)
    return times, out


def feed(case: LineCase, supervisor: Supervisor | None = None) -> tuple[Verdict | None, Supervisor]:
    """The samples through a supervisor, the infusion begun at the start as the controller
    begins it; the first verdict (its time is the sample's) and the supervisor."""
    verdicts: list[Verdict] = []
    sup = supervisor or Supervisor(SupervisorConfig(), verdicts.append)
    if supervisor is not None:
        sup.on_trip = verdicts.append
    times, pressures = signal(case)
    scenario = case.scenario()
    prior = line_prior(scenario.fluid_path)
    started = False
    for k, (t, p) in enumerate(zip(times, pressures, strict=True)):
        if not started and t >= case.rest_s:
            assert sup.rest_status().settled, sup.rest_status().why_not_settled()
            fill_ml = float("inf")
            if case.stop_s is not None:
                fill_ml = case.rate_ml_min * case.stop_s / 60.0
            assert sup.begin_infusion(t, case.rate_ml_min, prior, fill_ml=fill_ml)
            started = True
        sup.on_sample(k, float(t), float(p), int(p * 5369.0))
        if verdicts:
            return verdicts[0], sup
    return None, sup


def latency(case: LineCase, verdict: Verdict | None) -> float | None:
    """The verdict's time after the fault (None without either)."""
    if verdict is None or case.fault_s is None:
        return None
    return verdict.t_mono_s - (case.rest_s + case.fault_s)
