"""One small detector per hazard, each fed from the control path and deciding on its own.

Per-sample detectors (over-pressure, sensor rails, stuck ADC, implausible steps) look at
every sample at 1 kHz. The line detectors (occlusion, leak) work on a 100 Hz signal
made spike-proof by medians (``Conditioner``) and compare it with a first-order model of
the line learned at the start of the infusion (``LineModel``): a blocked needle makes the
pressure keep rising at Q/C where the model says it should level off; a leak makes it
fall below what the line should hold at this rate. Persistence is counted in time.
"""

from __future__ import annotations

import math
from collections import deque

from controller.safety.verdict import Verdict, VerdictKind

BLOCK = 10  # samples per block at 1 kHz: 10 ms
FILTER_BLOCKS = 25  # median over 250 ms: a handling spike (80 ms decay) barely passes


class OverPressure:
    """Absolute limit: two consecutive samples over it (2 ms at 1 kHz)."""

    def __init__(self, limit_mmhg: float, persist_samples: int = 2) -> None:
        self.limit_mmhg = limit_mmhg
        self.persist_samples = persist_samples
        self._over = 0

    def on_sample(self, t: float, pressure_mmhg: float) -> Verdict | None:
        if pressure_mmhg <= self.limit_mmhg:
            self._over = 0
            return None
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
        self, raw_max: int = (1 << 23) - 1, stuck_s: float = 0.25, max_step_mmhg: float = 150.0
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
        self._last_p = pressure_mmhg
        if step > self.max_step_mmhg:
            return Verdict(
                VerdictKind.SENSOR_FAULT,
                f"implausible step of {step:.0f} mmHg in one sample",
                t,
                {"step_mmhg": step},
            )
        return None


class Conditioner:
    """1 kHz samples -> 10 ms block medians -> 250 ms running median, and a noise estimate."""

    def __init__(self) -> None:
        self._block: list[float] = []
        self.blocks: deque[float] = deque(maxlen=FILTER_BLOCKS)
        self.ranges: deque[float] = deque(maxlen=100)
        self.filtered = math.nan

    def add(self, pressure_mmhg: float) -> bool:
        """True when a block completed and ``filtered`` has a new value."""
        block = self._block
        block.append(pressure_mmhg)
        if len(block) < BLOCK:
            return False
        block.sort()
        self.blocks.append(0.5 * (block[4] + block[5]))
        self.ranges.append(block[-1] - block[0])
        self._block = []
        ordered = sorted(self.blocks)
        self.filtered = ordered[len(ordered) // 2]
        return True

    def noise_sd_mmhg(self) -> float:
        """Robust noise: the median range of 10 Gaussian samples is about 3.08 sigma."""
        if len(self.ranges) < 50:
            return 0.0
        ordered = sorted(self.ranges)
        return ordered[len(ordered) // 2] / 3.08


class SensorNoise:
    def __init__(self, max_sd_mmhg: float = 3.0, persist_s: float = 0.3) -> None:
        self.max_sd_mmhg = max_sd_mmhg
        self.persist_s = persist_s
        self._since = -1.0

    def on_block(self, t: float, conditioner: Conditioner) -> Verdict | None:
        sd = conditioner.noise_sd_mmhg()
        if sd <= self.max_sd_mmhg:
            self._since = -1.0
            return None
        if self._since < 0:
            self._since = t
        if t - self._since < self.persist_s:
            return None
        return Verdict(
            VerdictKind.SENSOR_FAULT, f"signal noise {sd:.1f} mmHg rms", t, {"noise_mmhg": sd}
        )
