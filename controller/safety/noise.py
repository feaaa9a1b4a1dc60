"""A transducer whose noise is beyond what a working one shows."""

from __future__ import annotations

from controller.safety.conditioner import Conditioner
from controller.safety.persistence import Persistence
from controller.safety.verdict import Verdict, VerdictKind


class SensorNoise:
    def __init__(self, max_sd_mmhg: float = 3.0, persist_s: float = 0.3) -> None:
        self.max_sd_mmhg = max_sd_mmhg
        self._noisy = Persistence(persist_s)

    def on_block(self, t: float, conditioner: Conditioner) -> Verdict | None:
        sd = conditioner.noise_sd_mmhg()
        if not self._noisy.holds(t, sd > self.max_sd_mmhg):
            return None
        return Verdict(
            VerdictKind.SENSOR_FAULT, f"signal noise {sd:.1f} mmHg rms", t, {"noise_mmhg": sd}
        )
