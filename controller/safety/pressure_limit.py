"""Pressure-limited infusion: slow the pump to hold the line under a ceiling.

Instead of stopping at a pressure limit, the controller lowers the rate as the filtered
line pressure nears the ceiling and raises it back toward the planned rate when there
is room, the way computer-controlled injection systems close their loop on exit
pressure. The law is integral action on the headroom, with the pressure predicted a
short time ahead from its slope (a line with compliance climbs for a while after the
rate is cut, so reacting to the pressure now alone overshoots), and with the rate's
change bounded per second so the pump never jerks. If even the minimum rate cannot hold
the pressure under the ceiling for ``hold_s``, the line is blocked: ``occlusion``.

Pure and synchronous: ``step`` is called on the control path for each 10 ms block and
returns the rate the pump should run at; the controller sends it off the control path.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from controller.safety.verdict import Verdict, VerdictKind


class PressureLimitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    margin_fraction: float = Field(
        default=0.1, gt=0, le=0.5, description="setpoint below the ceiling, of the rise allowed"
    )
    lookahead_s: float = Field(default=2.0, ge=0, le=5, description="pressure predicted ahead")
    gain_per_s: float = Field(
        default=0.6, gt=0, le=5, description="rate change per second per unit of headroom error"
    )
    max_rise_per_s: float = Field(
        default=0.25, gt=0, le=2, description="fastest rate increase a second, of the planned rate"
    )
    max_fall_per_s: float = Field(
        default=1.0, gt=0, le=5, description="fastest rate decrease a second (slowing is safe)"
    )
    deadband_fraction: float = Field(
        default=0.08, ge=0, le=0.3, description="under the setpoint, of the rise: hold the rate"
    )
    min_rate_fraction: float = Field(default=0.1, gt=0, lt=1, description="of the planned rate")
    hold_s: float = Field(default=10.0, gt=0, le=120, description="over the ceiling at min rate")
    period_s: float = Field(default=0.2, gt=0, le=2, description="decision period")
    peak_window_s: float = Field(
        default=5.0, ge=0, le=20, description="controls on the peak of the last breath or so"
    )
    resolution_fraction: float = Field(
        default=0.02, gt=0, le=0.2, description="smallest rate change worth a command"
    )


@dataclass
class RateChange:
    t_mono_s: float
    rate_ml_min: float
    pressure_mmhg: float


class PressureLimiter:
    def __init__(
        self,
        ceiling_mmhg: float,
        planned_rate_ml_min: float,
        rest_mmhg: float,
        min_rate_ml_min: float,
        config: PressureLimitConfig | None = None,
    ) -> None:
        self.config = config or PressureLimitConfig()
        self.ceiling_mmhg = ceiling_mmhg
        self.planned = planned_rate_ml_min
        rise = max(1.0, ceiling_mmhg - rest_mmhg)
        self.setpoint_mmhg = ceiling_mmhg - self.config.margin_fraction * rise
        self.rise_mmhg = rise
        self.min_rate = max(min_rate_ml_min, self.config.min_rate_fraction * planned_rate_ml_min)
        self.rate = planned_rate_ml_min  # what the law wants
        self.commanded = planned_rate_ml_min  # what was last handed to the pump
        self.changes: list[RateChange] = []
        self._next_t = -1.0
        self._over_at_min_since = -1.0
        self._prev: tuple[float, float] | None = None
        self._recent: deque[float] = deque(
            maxlen=max(1, round(self.config.peak_window_s / self.config.period_s))
        )

    @property
    def limiting(self) -> bool:
        return self.commanded < self.planned

    def step(self, t: float, pressure_mmhg: float) -> Verdict | None:
        """One filtered pressure; may change ``commanded`` (then recorded in ``changes``)."""
        if t < self._next_t:
            return None
        c = self.config
        # The peak of the last breath or so, not the pressure now: breathing then cannot
        # steer the pump up and down, and the line's highest pressure is what is held. Its
        # slope (zero while the line holds steady, the real climb during a rise) looks ahead.
        self._recent.append(pressure_mmhg)
        peak = max(self._recent)
        slope = 0.0
        if self._prev is not None and t > self._prev[0]:
            slope = (peak - self._prev[1]) / (t - self._prev[0])
        self._prev = (t, peak)
        self._next_t = t + c.period_s
        predicted = peak + max(0.0, slope) * c.lookahead_s
        error = (self.setpoint_mmhg - predicted) / self.rise_mmhg  # headroom, in rises
        if 0.0 <= error < c.deadband_fraction:
            error = 0.0  # near the setpoint the rate holds: breathing must not steer the pump
        elif error > 0.0:
            error -= c.deadband_fraction
        change = c.gain_per_s * error * self.planned * c.period_s
        rise = c.max_rise_per_s * self.planned * c.period_s
        fall = c.max_fall_per_s * self.planned * c.period_s
        bounded = max(-fall, min(rise, change))
        self.rate = min(self.planned, max(self.min_rate, self.rate + bounded))
        self._command(t, pressure_mmhg)
        return self._blocked(t, pressure_mmhg)

    def _command(self, t: float, pressure_mmhg: float) -> None:
        moved = abs(self.rate - self.commanded)
        at_bound = self.rate in (self.planned, self.min_rate) and moved > 0
        if moved >= self.config.resolution_fraction * self.planned or at_bound:
            self.commanded = self.rate
            self.changes.append(RateChange(t, self.rate, pressure_mmhg))

    def _blocked(self, t: float, pressure_mmhg: float) -> Verdict | None:
        if self.rate > self.min_rate or pressure_mmhg < self.setpoint_mmhg:
            self._over_at_min_since = -1.0
            return None
        if self._over_at_min_since < 0:
            self._over_at_min_since = t
        if t - self._over_at_min_since < self.config.hold_s:
            return None
        return Verdict(
            VerdictKind.OCCLUSION,
            f"pressure held at {pressure_mmhg:.0f} mmHg, over the {self.setpoint_mmhg:.0f} "
            f"setpoint, for {self.config.hold_s:.0f} s at the minimum rate "
            f"{self.min_rate:.3g} mL/min: the line does not take the drug",
            t,
            {"pressure_mmhg": pressure_mmhg, "rate_ml_min": self.rate},
        )


class RateClock:
    """The volume the pump should have delivered by now when its rate changes on the way
    (the DIS cross-check of ``pump_fault`` compares against this)."""

    def __init__(self, t_mono_s: float, delivered_ml: float, rate_ml_min: float) -> None:
        self._t, self._ml, self.rate_ml_min = t_mono_s, delivered_ml, rate_ml_min

    def set_rate(self, t_mono_s: float, rate_ml_min: float) -> None:
        self._ml = self.expected_ml(t_mono_s)
        self._t, self.rate_ml_min = t_mono_s, rate_ml_min

    def expected_ml(self, t_mono_s: float) -> float:
        return self._ml + self.rate_ml_min * (t_mono_s - self._t) / 60.0
