"""One case through the real ``Controller``, faster than real time, as an operator runs it.

The simulator's rig (NE-1000 and PTB/1 emulators on one plant, the scenario's faults)
serves ``memory://`` ports; the system is built by the composition root exactly as
``serve`` and ``inject`` build it; everything runs on a virtual clock
(``simulator.virtual_clock``), so a minute-long injection costs a few seconds of CPU and
the same seed gives the same run. The operator's sequence is scripted: stopcock to air,
zero, stopcock to the patient, a wait, start (again, while the controller says the line
is still settling), and, for the radial technique, a repositioning pause before each
further aliquot. Nothing of the controller's loop is copied here: this module only does
what a person at the table and a stopwatch would.

Used by the detection benchmark (``bench.detection_bench``) and the closed-loop tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.calibration.transducer import NotStill
from controller.config import ControllerConfig
from controller.controller import Controller, StartRefused
from controller.injection import FINAL, Injection, InjectionRequest, State
from controller.system import DeviceSettings, SupervisorFactory, SystemSettings, build_system
from simulator.plant.truth import FaultOnset
from simulator.rig import SimRig
from simulator.scenario import Scenario
from simulator.virtual_clock import run_virtual

UNCALIBRATED = "benchmark: the emulated bridge's nominal gain"
TRUTH_EVERY_S = 0.01
WATCH_S = 0.05  # how often the scripted operator looks at the injection
SCRATCH = Path("/dev/shm") if Path("/dev/shm").is_dir() else None


@dataclass(frozen=True)
class Operator:
    """What the operator does, in the order the room does it (times in seconds)."""

    air_s: float = 2.0  # stopcock to air, before the zero is taken
    zero_samples: int = 500
    settle_s: float = 4.0  # stopcock back to the patient, then this wait before START
    retry_start_for_s: float = 120.0  # START again every second while the line settles
    reposition_s: tuple[float, ...] = ()  # radial: before each further aliquot's RESUME
    pause_at_ml: float | None = None  # the operator pauses here (total delivered) ...
    pause_s: float = 0.0  # ... for this long, then resumes
    tail_s: float = 2.0  # after the injection ends: relief and the record finish


@dataclass(frozen=True)
class Case:
    scenario: Scenario
    operator: Operator = Operator()
    config: ControllerConfig = field(default_factory=ControllerConfig)
    supervisor: SupervisorFactory | None = None  # a baseline detector instead of ours
    request: dict[str, Any] = field(default_factory=dict)  # more InjectionRequest fields


@dataclass
class CaseResult:
    scenario: str
    seed: int
    expect: str
    state: str
    verdict: str | None
    detail: str | None
    latency_s: float | None  # verdict against the first fault's true onset
    onset: FaultOnset | None
    recorded_ml: float  # what the controller reports delivered
    plunger_ml: float  # the true net plunger travel (relief withdrawals included)
    bolus_ul: float  # the line's stored volume above rest when the case ended
    start_refusals: list[str]
    truth: dict[str, float]
    error: str | None = None
    peak_mmhg: float = 0.0  # the true line pressure's highest, at the transducer
    rate_changes: int = 0  # pressure-limited mode: the rates sent to the pump
    # the compliance: what the catalogs said, what the start-up fit measured, the truth
    compliance_ml_per_mmhg: dict[str, float] = field(default_factory=dict)
    relief: dict[str, Any] | None = None  # the stop's pressure relief, as recorded
    onset_mono_s: float | None = None  # the first fault's onset on the controller's clock

    @property
    def false_alarm(self) -> bool:
        return self.expect == "complete" and self.verdict is not None

    @property
    def missed(self) -> bool:
        return self.expect != "complete" and self.verdict is None

    @property
    def volume_error_ul(self) -> float:
        return (self.recorded_ml - self.plunger_ml) * 1e3


def run_case(case: Case) -> CaseResult:
    """Run the case on a fresh virtual-clock loop (synchronous; one process per case). A
    case that cannot even run (a device that would not open) is a result with its error."""
    try:
        return run_virtual(lambda: _run(case))
    except Exception as exc:
        s = case.scenario
        return CaseResult(
            scenario=s.name,
            seed=s.seed,
            expect=s.expect,
            state="not run",
            verdict=None,
            detail=None,
            latency_s=None,
            onset=None,
            recorded_ml=0.0,
            plunger_ml=0.0,
            bolus_ul=0.0,
            start_refusals=[],
            truth={},
            error=f"{type(exc).__name__}: {exc}",
        )


async def _run(case: Case) -> CaseResult:
    tag = uuid.uuid4().hex[:10]
    with tempfile.TemporaryDirectory(prefix="case-", dir=SCRATCH) as folder:
        rig = SimRig(
            case.scenario,
            f"memory://pump-{tag}",
            f"memory://bridge-{tag}",
            truth_every_s=TRUTH_EVERY_S,
        )
        async with rig:
            settings = SystemSettings(
                devices=DeviceSettings(rig.pump_port, rig.bridge_port),
                db=Path(folder) / "record.sqlite",
                config=case.config,
                calibration_dir=Path(folder) / "calibrations",
                uncalibrated_reason=UNCALIBRATED,
                supervisor=case.supervisor,
            )
            system = await build_system(settings)
            try:
                return await _operate(case, rig, system.controller)
            finally:
                await system.close()


async def _operate(case: Case, rig: SimRig, controller: Controller) -> CaseResult:
    op, scenario = case.operator, case.scenario
    refusals: list[str] = []
    error: str | None = None
    injection: Injection | None = None
    try:
        await _zero(rig, controller, op)
        await _sleep(rig, op.settle_s)
        injection = controller.create_injection(_request(case))
        await _start(rig, controller, injection, op, refusals)
        await _follow(rig, controller, injection, op)
        handling = controller.stop_path.handling
        if handling is not None:  # relief and the record, after an alarm
            await asyncio.wait({handling})
        await _sleep(rig, op.tail_s)
    except (StartRefused, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return _result(
        case=case,
        scenario=scenario,
        rig=rig,
        controller=controller,
        injection=injection,
        refusals=refusals,
        error=error,
    )


async def _zero(rig: SimRig, controller: Controller, op: Operator) -> None:
    """Stopcock to air, wait, zero, stopcock back to the patient. Refused as not still,
    the operator does what the message says: more samples (twice as many, twice at most)."""
    rig.plant.stopcock_to_air = True
    await _sleep(rig, op.air_s)
    try:
        for attempt in range(3):
            try:
                await controller.zero_transducer(samples=op.zero_samples * 2**attempt)
                return
            except NotStill:
                if attempt == 2:
                    raise
    finally:
        rig.plant.stopcock_to_air = False


async def _start(
    rig: SimRig, controller: Controller, injection: Injection, op: Operator, refusals: list[str]
) -> None:
    """START; while the controller says the line is still settling, START again a second
    later, as an operator would, up to ``retry_start_for_s``."""
    waited = 0.0
    while True:
        try:
            await controller.start_injection(injection.id)
            return
        except StartRefused as refused:
            refusals.append(str(refused))
            if "settling" not in str(refused) or waited >= op.retry_start_for_s:
                raise
        await _sleep(rig, 1.0)
        waited += 1.0


async def _follow(rig: SimRig, controller: Controller, injection: Injection, op: Operator) -> None:
    """Until the injection ends: reposition and resume between aliquots, pause if told."""
    repositions = list(op.reposition_s)
    paused_once = op.pause_at_ml is None
    while injection.state not in FINAL:
        await asyncio.sleep(WATCH_S)  # the operator watches the screen
        if injection.state is State.RUNNING and paused_once:
            continue
        if injection.state is State.PAUSED and injection.waiting_for is not None:
            await _sleep(rig, repositions.pop(0) if repositions else 2.0)
            await _resume(controller, injection)
        elif injection.state is State.RUNNING and injection.delivered_ml >= (op.pause_at_ml or 0):
            paused_once = True
            await controller.pause_injection(injection.id)
            await _sleep(rig, op.pause_s)
            await _resume(controller, injection)


async def _resume(controller: Controller, injection: Injection) -> None:
    if injection.state is State.PAUSED and controller.alarm is None:
        with contextlib.suppress(StartRefused):
            await controller.resume_injection(injection.id)


async def _sleep(rig: SimRig, seconds: float) -> None:
    """The operator's stopwatch (virtual seconds)."""
    await asyncio.sleep(seconds)


def _request(case: Case) -> InjectionRequest:
    s = case.scenario
    fields: dict[str, Any] = {
        "volume_ml": s.injection.volume_ml,
        "rate_ml_min": s.injection.rate_ml_min,
        "syringe": s.syringe,
        "needle": s.needle,
        "drug": s.drug,
        "line": s.line,
        "target": s.tissue,
        "checklist_confirmed": True,
    }
    return InjectionRequest(**{**fields, **case.request})


def _result(
    *,
    case: Case,
    scenario: Scenario,
    rig: SimRig,
    controller: Controller,
    injection: Injection | None,
    refusals: list[str],
    error: str | None,
) -> CaseResult:
    rig.catch_up()
    plant = rig.plant
    verdict = injection.alarm if injection is not None else controller.alarm
    onsets = [o for o in plant.truth.onsets if o.applied]
    onset = onsets[0] if onsets else None
    latency = None
    if verdict is not None and onset is not None:
        latency = verdict.t_mono_s - (plant.truth.t0_mono_s + onset.t_s)
    p = plant.params
    stored_ul = max(0.0, p.c_line * (plant.p_line - p.p_interstitial)) * 1e3
    columns = plant.truth.columns["p_line_mmhg"]
    peak = (max(columns) if columns else plant.p_line) + p.hydrostatic_mmhg
    managed = controller.managed
    changes = len(managed.limiter.changes) if managed is not None else 0
    truth = scenario.plant_truth
    # a tissue that gave way before any scripted fault is a leak to be found, not a normal run
    expect = "leak" if onset is not None and onset.kind == "crack" else scenario.expect
    return CaseResult(
        scenario=scenario.name,
        seed=scenario.seed,
        expect=expect,
        state=str(injection.state) if injection is not None else "not created",
        verdict=str(verdict.kind) if verdict is not None else None,
        detail=verdict.detail if verdict is not None else None,
        latency_s=latency,
        onset=onset,
        recorded_ml=injection.delivered_ml if injection is not None else 0.0,
        plunger_ml=plant.delivered_ml,
        bolus_ul=stored_ul,
        start_refusals=refusals,
        truth={k: float(v) for k, v in vars(truth).items()},
        error=error,
        peak_mmhg=float(peak),
        rate_changes=changes,
        compliance_ml_per_mmhg=_compliance(controller, p.c_line),
        relief=_relief(injection),
        onset_mono_s=None if onset is None else plant.truth.t0_mono_s + onset.t_s,
    )


def _relief(injection: Injection | None) -> dict[str, Any] | None:
    events = injection.events if injection is not None else []
    found = [e for e in events if e.get("kind") == "pressure_relief"]
    return {k: v for k, v in found[-1].items() if k != "t"} if found else None


def _compliance(controller: Controller, true_ml_per_mmhg: float) -> dict[str, float]:
    estimate = controller.supervisor.compliance
    return {
        "prior": estimate.prior,
        "measured": estimate.value if estimate.measured else float("nan"),
        "true": true_ml_per_mmhg,
    }
