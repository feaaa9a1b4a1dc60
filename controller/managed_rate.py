"""Pressure-limited mode off the control path: the limiter's rate handed to the pump.

The limiter (``safety.pressure_limit``) decides on the control path; the pump-watch task
sends its rate to the pump (``RAT`` while running), keeps the expected volume in step with
it for the volume cross-check, and records every change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.records.recorder import Recorder
from controller.safety.pressure_limit import PressureLimiter, RateChange, RateClock
from drivers.clock import now_s
from drivers.ne1000 import NE1000

if TYPE_CHECKING:
    from controller.config import ControllerConfig
    from controller.injection import Injection
    from controller.safety.supervisor import Supervisor


class ManagedRate:
    """Pressure-limited mode off the control path: the pump-watch task hands the limiter's
    rate to the pump (``RAT`` while running), keeps the expected volume in step with it,
    and records every change."""

    @classmethod
    async def for_fill(
        cls, pump: NE1000, supervisor: Supervisor, injection: Injection, config: ControllerConfig
    ) -> ManagedRate | None:
        """A limiter for this fill if the injection asked for a ceiling, stepped by the
        supervisor on the control path; None otherwise."""
        ceiling = injection.request.pressure_ceiling_mmhg
        if ceiling is None:
            return None
        low, _ = await pump.rate_limits_ml_min()
        reference = supervisor.reference
        rest = reference.p_rest if reference is not None else supervisor.line.p_rest
        limiter = PressureLimiter(
            ceiling, injection.request.rate_ml_min, rest, low, config.pressure_limit
        )
        supervisor.limiter = limiter
        return cls(limiter, now_s(), injection.fill_delivered_ml)

    async def send(self, pump: NE1000, recorder: Recorder, injection: Injection) -> None:
        """Send the limiter's rate if it changed, and record the changes."""
        wanted = self.pending()
        if wanted is None:
            return
        accepted = await pump.set_rate_ml_min(wanted, running=True)
        self.sent(now_s(), accepted)
        injection.rate_now_ml_min = accepted
        for change in self.unrecorded():
            detail = {
                "rate_ml_min": round(change.rate_ml_min, 4),
                "pressure_mmhg": round(change.pressure_mmhg, 1),
            }
            recorder.event(injection.id, "rate_changed", detail, change.t_mono_s)

    def __init__(self, limiter: PressureLimiter, t_mono_s: float, delivered_ml: float) -> None:
        self.limiter = limiter
        self.sent_ml_min = limiter.planned
        self.clock = RateClock(t_mono_s, delivered_ml, limiter.planned)
        self.recorded = 0

    def pending(self) -> float | None:
        """The rate to send now, if it differs from what the pump runs at."""
        wanted = self.limiter.commanded
        return wanted if abs(wanted - self.sent_ml_min) > 1e-9 else None

    def sent(self, t_mono_s: float, accepted_ml_min: float) -> None:
        self.sent_ml_min = self.limiter.commanded
        self.clock.set_rate(t_mono_s, accepted_ml_min)

    def unrecorded(self) -> list[RateChange]:
        changes = self.limiter.changes[self.recorded :]
        self.recorded = len(self.limiter.changes)
        return changes
