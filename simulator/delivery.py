"""What a syringe pump really delivers into a beaker, and a clock to run it faster.

A gravimetric test is only worth simulating if the simulated pump has the
imperfections the test is there to measure (Snijder et al., and any published
start-up/trumpet curve):

- **start-up**: the mechanism's slack (lead-screw nut, plunger-to-pusher gap) is
  taken up before anything moves, and the syringe's compliance then fills with a
  time constant of a few minutes at 1 mL/h;
- **lead-screw periodicity**: the plunger's true position wobbles with each turn
  of the screw, so flow over a 2-minute window is off by a few per cent while the
  mean over an hour is right: the "trumpet";
- **calibration error**: a syringe whose real bore differs from the nominal
  diameter the pump was told delivers a constant percentage too much or too little.

:class:`DeliveryModel` is a :class:`~simulator.ne1000_model.PlungerHook`; the
balance emulator asks it how much liquid has reached the beaker at a given time.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.clock import now_s as loop_now_s


class ScaledClock:
    """Seconds that run ``speed`` times faster than the loop's clock, from 0 at creation.

    One instance is shared by the emulated pump, the emulated balance and the test
    itself, so that all three agree on the time of every sample. The loop's clock
    (``drivers.clock``), not ``time.monotonic``: on the simulator's virtual-clock loop the
    gravimetric protocol then runs with no wall-clock jitter in its sample times.
    Create and read it on the running loop.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, not {speed}")
        self.speed = speed
        self._origin_s = loop_now_s()

    def now_s(self) -> float:
        return (loop_now_s() - self._origin_s) * self.speed

    async def sleep_until(self, t_s: float) -> None:
        delay_s = (t_s - self.now_s()) / self.speed
        if delay_s > 0:
            await asyncio.sleep(delay_s)


@dataclass
class PumpMechanics:
    """The imperfections, in the units an engineer would measure them in."""

    slack_ul: float = 3.0  # taken up at start before any liquid moves
    compliance_tau_s: float = 90.0  # first-order lag between plunger and outlet
    screw_pitch_mm: float = 0.635  # 40 threads per inch
    screw_wobble_um: float = 4.0  # amplitude of the per-turn position error
    bore_error_pct: float = 0.4  # real bore area above nominal, in per cent of area


@dataclass
class DeliveryModel:
    """Plunger motion in, liquid at the needle tip out (mL, on the caller's clock)."""

    diameter_mm: float  # the syringe's nominal bore
    mechanics: PumpMechanics = field(default_factory=PumpMechanics)
    # the bore the pump was told (its DIA): it turns the pump's mL into pusher travel
    pump_diameter_mm: Callable[[], float] | None = None
    travel_mm: float = 0.0
    outlet_ml: float = 0.0
    _slack_left_ml: float = field(init=False)
    _last_t_s: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._slack_left_ml = self.mechanics.slack_ul / 1000.0

    @staticmethod
    def _area_mm2(diameter_mm: float) -> float:
        return math.pi * diameter_mm**2 / 4.0

    def on_plunger(self, t_mono_s: float, dt_s: float, flow_ml_min: float) -> bool:
        """PlungerHook: the pump moved its pusher by ``flow * dt``; never stalls."""
        self.advance(t_mono_s - dt_s)
        moved_ml = flow_ml_min * dt_s / 60.0
        if moved_ml > 0 and self._slack_left_ml > 0:
            taken = min(moved_ml, self._slack_left_ml)
            self._slack_left_ml -= taken
            moved_ml -= taken
        told_mm = self.pump_diameter_mm() if self.pump_diameter_mm else self.diameter_mm
        self.travel_mm += moved_ml * 1000.0 / self._area_mm2(told_mm)
        self.advance(t_mono_s)
        return False

    def displaced_ml(self) -> float:
        """Volume the plunger has truly displaced: real bore, screw wobble included."""
        m = self.mechanics
        turns = self.travel_mm / m.screw_pitch_mm
        wobble_mm = m.screw_wobble_um / 1000.0 * math.sin(2 * math.pi * turns)
        real_area_mm2 = self._area_mm2(self.diameter_mm) * (1 + m.bore_error_pct / 100.0)
        return (self.travel_mm + wobble_mm) * real_area_mm2 / 1000.0

    def advance(self, t_s: float) -> None:
        """Let the outlet catch up with the plunger through the syringe's compliance."""
        if self._last_t_s is None:
            self._last_t_s = t_s
        dt_s = t_s - self._last_t_s
        if dt_s <= 0:
            return
        self._last_t_s = t_s
        target_ml = self.displaced_ml()
        self.outlet_ml += (target_ml - self.outlet_ml) * (
            1 - math.exp(-dt_s / self.mechanics.compliance_tau_s)
        )

    def delivered_ml(self, t_s: float) -> float:
        self.advance(t_s)
        return self.outlet_ml
