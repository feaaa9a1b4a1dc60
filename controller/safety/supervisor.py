"""The safety supervisor: every sample and device event in, at most one latched verdict out.

``on_sample`` is a bridge sample listener: it runs in the transport's receive callback,
synchronously, and when a detector decides it calls ``on_trip`` at once, which is the
controller's stop path (pump STP and interlock, then record). Nothing here awaits.
A verdict latches: no other verdict is raised until ``acknowledge()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.safety.breath_comb import SMOOTH_BLOCKS, BreathComb
from controller.safety.detectors import (
    Conditioner,
    OverPressure,
    SensorNoise,
    SensorSamples,
)
from controller.safety.fall_comb import FallComb
from controller.safety.line_model import BLOCK_S, Baseline, Leak, LineModel, LinePrior, Occlusion
from controller.safety.pressure_limit import PressureLimiter
from controller.safety.verdict import Verdict, VerdictKind
from drivers.transducer import BridgeEvent
from firmware_bridge.messages import StatusFlag, TripReason

COMB_SMOOTH_S = SMOOTH_BLOCKS * BLOCK_S  # a spike stays in the comb's mean this long
SENSOR_FLAGS = StatusFlag.SENSOR_OPEN | StatusFlag.ADC_SATURATED | StatusFlag.EXCITATION_FAULT


@dataclass(frozen=True)
class SupervisorConfig:
    pressure_limit_mmhg: float = 900.0
    stuck_s: float = 0.25
    max_step_mmhg: float = 150.0
    max_noise_sd_mmhg: float = 3.0
    volume_tolerance_ml: float = 0.02
    volume_tolerance_fraction: float = 0.10


class Supervisor:
    def __init__(self, config: SupervisorConfig, on_trip: Callable[[Verdict], None]) -> None:
        self.config = config
        self.on_trip = on_trip
        self.latched: Verdict | None = None
        self.infusing = False
        self.samples = 0
        self.last_pressure_mmhg = float("nan")
        self.limiter: PressureLimiter | None = None  # pressure-limited mode, set per fill
        self._reset_detectors()

    def _reset_detectors(self) -> None:
        c = self.config
        self.over_pressure = OverPressure(c.pressure_limit_mmhg)
        self.sensor = SensorSamples(stuck_s=c.stuck_s, max_step_mmhg=c.max_step_mmhg)
        self.conditioner = Conditioner()
        self.noise = SensorNoise(c.max_noise_sd_mmhg)
        self.baseline = Baseline()
        self.line = LineModel()
        self.occlusion = Occlusion()
        self.leak = Leak()
        self.comb = BreathComb()
        self.fall = FallComb()

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
        filtered = self.conditioner.filtered
        blocks = self.conditioner.blocks
        # how far the 10 ms block medians moved in 20 ms: handling spikes are told by it
        rise = blocks[-1] - blocks[-3] if len(blocks) >= 3 else 0.0
        verdict = self.noise.on_block(t, self.conditioner)
        if self.infusing and self.limiter is not None and self.limiter.changes:
            # The rate is being managed: the line model's constant-rate tests no longer
            # apply. The limiter owns occlusion; a collapse below rest is still a leak.
            verdict = (
                verdict
                or self.limiter.step(t, filtered)
                or self.leak.on_block(t, self.line, filtered)
            )
        elif self.infusing:
            line = self.line
            line.update(t, filtered, rise, blocks[-1])
            self.comb.update(filtered, t < line.artifact_until + COMB_SMOOTH_S)
            self.fall.update(t, blocks[-1], rise)
            monitoring = line.state == "monitoring"
            verdict = (
                verdict
                or (self.limiter.step(t, filtered) if self.limiter is not None else None)
                or self.occlusion.on_block(t, line)
                or self.comb.on_block(t, monitoring, line.t_levelled)
                or self.fall.on_block(t, monitoring, line.t_levelled)
                or self.leak.on_block(t, line, filtered)
            )
        else:
            self.baseline.add(t, filtered)
            self.fall.add_rest(t, blocks[-1], rise)
        if verdict is not None:
            self.trip(verdict)

    def trip(self, verdict: Verdict) -> None:
        if self.latched is not None:
            return
        self.latched = verdict
        self.infusing = False
        self.line.stop()
        self.on_trip(verdict)

    # ------------------------------------------------------------ the injection's phases
    def begin_infusion(self, t: float, rate_ml_min: float, prior: LinePrior) -> None:
        p_rest, envelope = self.baseline.rest()
        q_ml_s = rate_ml_min / 60.0
        drift = self.line.drift_fraction * q_ml_s / prior.compliance_ml_per_mmhg
        excursions = self.baseline.rest_excursions(drift)
        self.line.start(t, q_ml_s, p_rest, envelope, prior, rest_excursions=excursions)
        self.comb.learn(self.baseline.values())
        self.fall.learn(self.comb.period)
        self.infusing = True

    def end_infusion(self) -> None:
        self.infusing = False
        self.limiter = None
        self.line.stop()
        self.baseline.clear()

    def acknowledge(self) -> Verdict | None:
        latched, self.latched = self.latched, None
        self._reset_detectors()
        return latched

    # ------------------------------------------------------------ device events
    def on_bridge_event(self, event: BridgeEvent) -> None:
        verdict = _bridge_verdict(event)
        if verdict is not None:
            self.trip(verdict)

    def on_pump_alarm(self, t: float, alarm: str) -> None:
        self.trip(Verdict(VerdictKind.PUMP_FAULT, f"pump alarm {alarm}", t))

    def on_pump_lost(self, t: float, why: str) -> None:
        self.trip(Verdict(VerdictKind.LINK_LOST, f"pump not answering: {why}", t))

    def on_delivery(self, t: float, dispensed_ml: float, expected_ml: float) -> None:
        """The pump's DIS against time x rate: a slipping or stalled drive disagrees."""
        c = self.config
        tolerance = max(c.volume_tolerance_ml, c.volume_tolerance_fraction * expected_ml)
        if abs(dispensed_ml - expected_ml) > tolerance:
            self.trip(
                Verdict(
                    VerdictKind.PUMP_FAULT,
                    f"pump reports {dispensed_ml * 1e3:.0f} uL delivered, "
                    f"{expected_ml * 1e3:.0f} uL expected by now",
                    t,
                    {"dispensed_ml": dispensed_ml, "expected_ml": expected_ml},
                )
            )


def _bridge_verdict(event: BridgeEvent) -> Verdict | None:
    t = event.t_mono_s
    if event.kind == "link_lost":
        return Verdict(VerdictKind.LINK_LOST, f"transducer: {event.detail}", t)
    if event.kind == "rebooted":
        return Verdict(VerdictKind.LINK_LOST, f"transducer bridge rebooted: {event.detail}", t)
    if event.kind == "status" and event.flags is not None and event.flags & SENSOR_FLAGS:
        return Verdict(
            VerdictKind.SENSOR_FAULT, f"bridge reports {(event.flags & SENSOR_FLAGS)!r}", t
        )
    if event.kind == "trip" and event.trip is not None:
        reason = event.trip.reason
        kinds = {
            TripReason.OVER_LIMIT: VerdictKind.OVER_PRESSURE,
            TripReason.SENSOR_FAULT: VerdictKind.SENSOR_FAULT,
            TripReason.WATCHDOG: VerdictKind.LINK_LOST,
        }
        if reason in kinds:
            return Verdict(kinds[reason], f"bridge interlock tripped: {reason.name}", t)
    return None
