"""The safety supervisor: every sample and device event in, at most one latched verdict out.

``on_sample`` is a bridge sample listener: it runs in the transport's receive callback,
synchronously, and when a detector decides it calls ``on_trip`` at once, which is the
controller's stop path (pump STP and interlock, then record). Nothing here awaits.
A verdict latches: no other verdict is raised, and no infusion begins, until
``acknowledge()``.

At rest the line is watched settling (``rest.py``); the first fill of an injection takes
its settled level, artifact envelope and rhythms as the reference every later fill (radial
aliquots, a resume) compares with, because between fills the line is decaying, never at
rest. While infusing, per block: the compliance measured from the first rise, the line
model and its tests (occlusion, fall), the two combs with breathing (and heartbeat)
cancelled, the fast climb on the 10 ms blocks at high rates, the needle floor, and on the
first fill the start's shape (its slope may slow only as a healthy line's does) and the rise
over the last breath (it may only fall: climbing again is a blockage).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.safety.breath_comb import BreathComb
from controller.safety.breath_rise import BreathRise
from controller.safety.compliance import ComplianceEstimate, Rhythms
from controller.safety.conditioner import Conditioner
from controller.safety.device_events import bridge_verdict, delivery_verdict
from controller.safety.fall_comb import FallComb
from controller.safety.fast_climb import FastClimb, applies, fast_drift_mmhg_s
from controller.safety.lagged_rise import SMOOTH_BLOCKS
from controller.safety.leak import Fall, NeedleFloor
from controller.safety.line_model import (
    DOWN_DRIFT_MMHG_S,
    LEVEL_WINDOW_S,
    UP_DRIFT_OF_FULL,
    LineModel,
    LinePrior,
    LineState,
    RestReference,
)
from controller.safety.noise import SensorNoise
from controller.safety.occlusion import Occlusion
from controller.safety.pressure_limit import PressureLimiter
from controller.safety.rest import Rest, RestStatus
from controller.safety.sample_checks import OverPressure, SensorSamples
from controller.safety.start_shape import StartShape
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import Verdict, VerdictKind
from drivers.transducer import BridgeEvent

COMB_SMOOTH_S = SMOOTH_BLOCKS * BLOCK_S  # a spike stays in the comb's mean this long
# The pump stops by itself at its volume target; the line then falls, which is no leak.
# Downward tests rest from this long before the fill's end (by the rate, from the start).
ENDING_S = 0.5
FAST_START_AFTER_S = LEVEL_WINDOW_S + 0.5  # the 4 s slope spans the start alone


# What [supervisor] may be set to: beyond these a check is off in all but name (a
# volume tolerance of 50 %, a stuck time of a minute) or trips on every sample.
SUPERVISOR_BOUNDS: dict[str, tuple[float, float]] = {
    "pressure_limit_mmhg": (50.0, 1000.0),
    "stuck_s": (0.05, 2.0),
    "max_step_mmhg": (20.0, 500.0),
    "max_noise_sd_mmhg": (0.5, 10.0),
    "volume_tolerance_ml": (0.002, 0.1),
    "volume_tolerance_fraction": (0.01, 0.25),
}


@dataclass(frozen=True)
class SupervisorConfig:
    pressure_limit_mmhg: float = 900.0
    stuck_s: float = 0.25
    max_step_mmhg: float = 150.0
    max_noise_sd_mmhg: float = 3.0
    volume_tolerance_ml: float = 0.02
    volume_tolerance_fraction: float = 0.10

    def __post_init__(self) -> None:
        for name, (low, high) in SUPERVISOR_BOUNDS.items():
            value = getattr(self, name)
            if not low <= value <= high:  # NaN fails too
                raise ValueError(f"[supervisor] {name} = {value} is outside {low:g}..{high:g}")


class Supervisor:
    def __init__(self, config: SupervisorConfig, on_trip: Callable[[Verdict], None]) -> None:
        self.config = config
        self.on_trip = on_trip
        self.latched: Verdict | None = None
        self.infusing = False
        self.infusing_since_s = 0.0
        self.samples = 0
        self.last_pressure_mmhg = float("nan")
        self.limiter: PressureLimiter | None = None  # pressure-limited mode, set per fill
        self.reference: RestReference | None = None  # the first fill's settled rest
        self.prior = LinePrior(1e-3, 1.0)
        self.compliance = ComplianceEstimate(1e-3)
        self.rate_ml_min = 0.0
        self.fill_left_ml = float("inf")  # by the rate since the start: the pump's own end
        self._rest_excursions: tuple[float, float] | None = None
        self._swings: dict[float, float] = {}  # slope window (s) -> swing, measured at rest
        self._reset_detectors()

    def _reset_detectors(self) -> None:
        c = self.config
        self.over_pressure = OverPressure(c.pressure_limit_mmhg)
        self.sensor = SensorSamples(stuck_s=c.stuck_s, max_step_mmhg=c.max_step_mmhg)
        self.conditioner = Conditioner()
        self.noise = SensorNoise(c.max_noise_sd_mmhg)
        self.rest = Rest()
        self.line = LineModel()
        self.occlusion = Occlusion()
        self.floor = NeedleFloor()
        self.fall = Fall()
        self.comb = BreathComb()
        self.fall_comb = FallComb()
        self.fast_climb = FastClimb()
        self.start_shape = StartShape()
        self.breath_rise = BreathRise()

    # ------------------------------------------------------------ the control path
    def on_sample(self, index: int, t: float, pressure_mmhg: float, raw: int) -> None:
        self.samples += 1
        self.last_pressure_mmhg = pressure_mmhg
        verdict = self.over_pressure.on_sample(t, pressure_mmhg) or self.sensor.on_sample(
            t, pressure_mmhg, raw
        )
        if verdict is not None:
            self.trip(verdict)
        if self.conditioner.add(pressure_mmhg):
            self._on_block(t)

    def _on_block(self, t: float) -> None:
        conditioner = self.conditioner
        filtered, block, jump = conditioner.filtered, conditioner.block, conditioner.jump_mmhg
        verdict = self.noise.on_block(t, conditioner)
        if not self.infusing:
            self.rest.add(t, filtered, block, self.fall_comb.held(t, jump))
        elif self.limiter is not None and self.limiter.changes:
            # The rate is being managed: the line model's constant-rate tests no longer
            # apply. The limiter owns occlusion; the needle floor still holds at its rate.
            rate = min(self.rate_ml_min, self.limiter.commanded)
            ending = self._count_down(rate)
            verdict = (
                verdict
                or self.limiter.step(t, filtered)
                or (
                    None
                    if ending
                    else self.floor.on_block(
                        t, self.line, block, rate, conditioner.block_noise_mmhg
                    )
                )
            )
        else:
            verdict = verdict or self._infusing_block(t, filtered, block, jump)
        if verdict is not None:
            self.trip(verdict)

    def _count_down(self, rate_ml_min: float) -> bool:
        """One block of the fill gone by the rate; True once its end is near."""
        self.fill_left_ml -= rate_ml_min * BLOCK_S / 60.0
        return self.fill_left_ml <= rate_ml_min * ENDING_S / 60.0

    def _infusing_block(
        self, t: float, filtered: float, block: float, jump: float
    ) -> Verdict | None:
        line = self.line
        if self.compliance.add(t, block):
            line.set_compliance(self.compliance.value)
        self.comb.update(filtered, t < line.artifact_until + COMB_SMOOTH_S)
        line.update_breath_slope(t, self.comb.slope_mmhg_s)
        line.update(t, filtered, jump, block)
        self.fall_comb.update(t, block, jump)
        monitoring = line.state is LineState.MONITORING
        drift, floor = self._fast_drift(t)
        ending = self._count_down(self.rate_ml_min)
        upward = (
            (self.limiter.step(t, filtered) if self.limiter is not None else None)
            or self.fast_climb.on_block(
                t,
                block,
                jump,
                drift_mmhg_s=drift,
                lowest_drift_mmhg_s=floor,
                full_mmhg_s=line.full_occlusion_slope,
            )
            or self.occlusion.on_block(t, line)
            or self.comb.on_block(t, monitoring, line.t_levelled)
            # the pump's own end: the line's decay slows, and y climbs as it does
            or (None if ending else self._breath_rise(t, block))
        )
        if upward is not None or ending:
            return upward
        return (
            self.floor.on_block(t, line, block, self.rate_ml_min, self.conditioner.block_noise_mmhg)
            or self.fall_comb.on_block(t, monitoring, line.t_levelled)
            or self.fall.on_block(t, line)
            or self.start_shape.on_block(t, line.breath_slope)
        )

    def _breath_rise(self, t: float, block: float) -> Verdict | None:
        spike = t < self.line.artifact_until + COMB_SMOOTH_S  # as the comb holds it
        return self.breath_rise.on_block(t, block, spike)

    def _fast_drift(self, t: float) -> tuple[float | None, float]:
        """The fast climb's drift now (None: the test stands aside) and the lowest it can
        take this fill. It stands on the line's 4 s slope, once that spans the infusion
        alone: a healthy line's slope only falls (the start transient) or holds (tissue
        filling up), so it never climbs back above where it stood 2 s ago, which is what
        the 4 s slope says. Not on the creep, which follows the slope 10 s behind: the
        population's occlusion@5 #10 and #180 levelled with a creep of 17-20 mmHg/s and a
        slope of 7-10, and the test stood aside."""
        line = self.line
        full = line.full_occlusion_slope
        breath_s = self.comb.period_s
        floor = fast_drift_mmhg_s(full, 0.0, line.envelope, breath_s)
        if line.state is LineState.IDLE or t - line.t_start < FAST_START_AFTER_S:
            return None, floor
        drift = floor + max(0.0, line.slope)
        return (drift if applies(full, drift) else None), floor

    def trip(self, verdict: Verdict) -> None:
        if self.latched is not None:
            return
        self.latched = verdict
        self.infusing = False
        self.line.stop()
        self.on_trip(verdict)

    # ------------------------------------------------------------ the injection's phases
    def rest_status(self) -> RestStatus:
        """Whether the line has settled at rest (a first fill may start only then)."""
        return self.rest.status()

    def begin_infusion(
        self,
        t: float,
        rate_ml_min: float,
        prior: LinePrior,
        *,
        first_fill: bool = True,
        fill_ml: float = float("inf"),
        injected_ml: float = 0.0,
    ) -> bool:
        """The pump starts now. ``first_fill``: the injection's first (the line is at rest
        and its reference is learnt now); else the reference of that first fill is kept.
        ``injected_ml``: what this injection delivered before this fill (the tissue's
        resistance grows with it).
        False, and nothing armed, while a verdict is latched."""
        if self.latched is not None:
            return False
        q_ml_s = rate_ml_min / 60.0
        self.rate_ml_min, self.prior, self.fill_left_ml = rate_ml_min, prior, fill_ml
        first_fill = first_fill or self.reference is None
        if first_fill:
            self._learn_rest(t, q_ml_s, prior)
        else:
            self.comb.restart()
            self.fall_comb.restart()
            self.breath_rise.disarm()
        self.fast_climb.restart()
        self.start_shape.start(
            t,
            first_fill=first_fill,
            after_s=FAST_START_AFTER_S,
            swing_mmhg_s=self.comb.slope_swing_mmhg_s,
        )
        assert self.reference is not None
        self.line.start(
            t,
            q_ml_s,
            reference=self.reference,
            prior=prior,
            compliance_ml_per_mmhg=self.compliance.value,
            now_mmhg=self.conditioner.filtered,
            rest_excursions=self._rest_excursions,
            heart_period_s=self.fall_comb.heart * BLOCK_S,
            slope_swing=self._slope_swing if first_fill else self._kept_swing,
            injected_ml=injected_ml,
            breath_swing_mmhg_s=self.comb.slope_swing_mmhg_s,
        )
        self.floor.start()
        self.rest.clear()
        self.infusing = True
        self.infusing_since_s = t
        return True

    def _learn_rest(self, t: float, q_ml_s: float, prior: LinePrior) -> None:
        status = self.rest.status()
        self.reference = RestReference(status.level_mmhg, status.envelope_mmhg)
        self._swings = {}
        self.comb.learn(self.rest.filtered())
        rest_blocks, held = self.rest.blocks()
        self.fall_comb.learn(rest_blocks, held, self.comb.period)
        self.fast_climb.learn(rest_blocks, held)
        self.breath_rise.learn(self.comb.period, status.envelope_mmhg)
        self.fall.learn(self.comb.period_s)
        self.occlusion.learn(self.comb.period_s)
        up_drift = UP_DRIFT_OF_FULL * q_ml_s / prior.compliance_ml_per_mmhg
        self._rest_excursions = self.rest.excursions(up_drift, DOWN_DRIFT_MMHG_S)
        self.compliance = ComplianceEstimate(prior.compliance_ml_per_mmhg)
        breath_s = self.comb.period * BLOCK_S
        last_breath = self.rest.recent_blocks(breath_s) if self.comb.period else None
        rhythms = Rhythms(breath_s, last_breath, self.fall_comb.heart * BLOCK_S, t)
        self.compliance.start(
            t, q_ml_s, prior.path_resistance_mmhg_s_per_ml, status.level_mmhg, rhythms
        )

    def _slope_swing(self, window_s: float) -> float:
        swing = self.rest.slope_swing(window_s)
        self._swings[window_s] = swing
        return swing

    def _kept_swing(self, window_s: float) -> float:
        """Later fills: what the first fill measured at rest for this window (the line
        between fills is not at rest); for a window it did not measure, the largest swing
        it measured (the cautious side: fast tests apply less)."""
        if window_s in self._swings:
            return self._swings[window_s]
        return max(self._swings.values(), default=0.0)

    def end_infusion(self) -> None:
        """The pump stopped (end of a fill, a pause): the line decays, rest data again."""
        self.infusing = False
        self.limiter = None
        self.breath_rise.disarm()
        self.line.stop()
        self.compliance.stop()
        self.rest.clear()

    def end_injection(self) -> None:
        """The injection is over: the next one learns its own rest."""
        self.end_infusion()
        self.reference = None

    def acknowledge(self) -> Verdict | None:
        latched, self.latched = self.latched, None
        self.reference = None
        self._reset_detectors()
        return latched

    # ------------------------------------------------------------ device events
    def on_bridge_event(self, event: BridgeEvent) -> None:
        verdict = bridge_verdict(event)
        if verdict is not None:
            self.trip(verdict)

    def on_pump_alarm(self, t: float, alarm: str) -> None:
        self.trip(Verdict(VerdictKind.PUMP_FAULT, f"pump alarm {alarm}", t))

    def on_pump_lost(self, t: float, why: str) -> None:
        self.trip(Verdict(VerdictKind.LINK_LOST, f"pump not answering: {why}", t))

    def on_software_fault(self, t: float, where: str, exc: BaseException) -> None:
        """An exception where none may be: an alarm like any other, never silence."""
        detail = f"{where} raised {type(exc).__name__}: {exc}"
        self.trip(Verdict(VerdictKind.SOFTWARE_FAULT, detail, t))

    def on_delivery(self, t: float, dispensed_ml: float, expected_ml: float) -> None:
        c = self.config
        verdict = delivery_verdict(
            t, dispensed_ml, expected_ml, c.volume_tolerance_ml, c.volume_tolerance_fraction
        )
        if verdict is not None:
            self.trip(verdict)
