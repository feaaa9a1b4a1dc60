"""Per-sample checks at 1 kHz: the absolute pressure limit and a transducer that lies."""

from __future__ import annotations

import math

from controller.safety.verdict import Verdict, VerdictKind

RAW_FULL_SCALE = (1 << 23) - 1  # a 24-bit ADC at a rail: open or saturated
ATMOSPHERE_MMHG = 15.0  # a fall that ends further below zero than this is no line's doing


class OverPressure:
    """Absolute limit: ``persist_samples`` consecutive samples over it (2 ms at 1 kHz)."""

    def __init__(self, limit_mmhg: float, persist_samples: int = 2) -> None:
        self.limit_mmhg = limit_mmhg
        self.persist_samples = persist_samples
        self._over = 0

    def on_sample(self, t: float, pressure_mmhg: float) -> Verdict | None:
        if pressure_mmhg <= self.limit_mmhg:
            self._over = 0
            return None
        if math.isnan(pressure_mmhg):  # a broken scale: never "within the limit"
            return Verdict(
                VerdictKind.SENSOR_FAULT, "pressure is not a number: the scale is broken", t
            )
        self._over += 1
        if self._over < self.persist_samples:
            return None
        return Verdict(
            VerdictKind.OVER_PRESSURE,
            f"pressure {pressure_mmhg:.0f} mmHg over the {self.limit_mmhg:.0f} mmHg limit",
            t,
            {"pressure_mmhg": pressure_mmhg, "limit_mmhg": self.limit_mmhg},
        )


class SensorSamples:
    """ADC at a rail (open or saturated), a frozen code, or a physically impossible step."""

    def __init__(
        self, raw_max: int = RAW_FULL_SCALE, stuck_s: float = 0.25, max_step_mmhg: float = 150.0
    ) -> None:
        self.raw_max = raw_max
        self.stuck_s = stuck_s
        self.max_step_mmhg = max_step_mmhg
        self._last_raw = 0
        self._same_since = -1.0
        self._last_p = math.nan

    def on_sample(self, t: float, pressure_mmhg: float, raw: int) -> Verdict | None:
        if raw >= self.raw_max or raw <= -self.raw_max:
            return Verdict(
                VerdictKind.SENSOR_FAULT,
                "ADC at full scale: transducer open or saturated",
                t,
                {"raw": raw},
            )
        if raw != self._last_raw:
            self._last_raw, self._same_since = raw, t
        elif self._same_since >= 0 and t - self._same_since >= self.stuck_s:
            return Verdict(
                VerdictKind.SENSOR_FAULT,
                f"ADC reading frozen for {self.stuck_s * 1e3:.0f} ms",
                t,
                {"raw": raw},
            )
        step = abs(pressure_mmhg - self._last_p)
        emptying = pressure_mmhg < self._last_p and pressure_mmhg > -ATMOSPHERE_MMHG
        self._last_p = pressure_mmhg
        # A line opened anywhere (a Luer coming apart, a crack) empties its stored volume
        # within a millisecond, to atmosphere or to what the path before the opening holds
        # (tens of mmHg): the leak tests' to call, not an impossible reading. A rise that
        # fast (Q/C is at most a few hundred mmHg/s) or a fall below atmosphere is.
        if step > self.max_step_mmhg and not emptying:
            return Verdict(
                VerdictKind.SENSOR_FAULT,
                f"implausible step of {step:.0f} mmHg in one sample",
                t,
                {"step_mmhg": step},
            )
        return None
