"""The fixed-threshold detector the benchmark holds ours against, in the same runs.

What a plain infusion-pump style check does: once a second into the infusion, the 250 ms
median pressure over 300 mmHg is an occlusion and under 5 mmHg a leak. Everything else
(the absolute limit, sensor and link faults, the stop path) is the supervisor's own, so
the comparison is of the line detectors alone.
"""

from __future__ import annotations

from controller.safety.supervisor import Supervisor
from controller.safety.verdict import Verdict, VerdictKind

OCCLUSION_MMHG = 300.0
LEAK_MMHG = 5.0
AFTER_START_S = 1.0


class ThresholdSupervisor(Supervisor):
    def _on_block(self, t: float) -> None:
        p = self.conditioner.filtered
        if not self.infusing:  # the same start gate as ours: a settled line
            self.rest.add(t, p, self.conditioner.block, False)
            return
        if t - self.infusing_since_s <= AFTER_START_S:
            return
        if p > OCCLUSION_MMHG:
            self.trip(Verdict(VerdictKind.OCCLUSION, f"pressure over {OCCLUSION_MMHG:g}", t))
        elif p < LEAK_MMHG:
            self.trip(Verdict(VerdictKind.LEAK, f"pressure under {LEAK_MMHG:g}", t))
