"""Whether an injection may start now, and if not, the one reason an operator can act on.

The checks in the order an operator meets them: the injection's own state, what else is
running, a record that cannot be written (before the alarm it raised: acknowledging does
not mend a full disk), a latched alarm, the zero, the checklist, the drug's window, the
transducer's stream, its calibration, and the line at rest (a first fill compares
everything with the settled rest, so the line must have settled after the stopcock).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from controller.injection import FINAL, Injection, State
from controller.safety.verdict import Verdict
from drivers.clock import now_s

if TYPE_CHECKING:
    from controller.controller import Controller

UNCALIBRATED = (
    "transducer not calibrated: calibrate it (Calibration tab, or injectctl transducer "
    "calibrate) or run with --uncalibrated REASON"
)


def alarm_latched(alarm: Verdict | None) -> str:
    """The refusal while an alarm is latched, naming it: a test, a log or a CLI that shows
    only this line still says which alarm must be acknowledged."""
    what = f" ({alarm.kind}: {alarm.detail})" if alarm is not None else ""
    return f"an alarm is latched{what}; acknowledge it first"


def why_not_startable(c: Controller, injection: Injection) -> str | None:
    zero_age = None if c.zeroed_at_mono_s is None else now_s() - c.zeroed_at_mono_s
    active = c.active
    checks: list[tuple[bool, Callable[[], str]]] = [
        (injection.state is not State.READY, lambda: f"injection is {injection.state}"),
        (
            active is not None and active is not injection and active.state not in FINAL,
            lambda: "another injection is running",
        ),
        (
            c.recorder.failure is not None,
            lambda: f"the record cannot be written: {c.recorder.failure}",
        ),
        (c.alarm is not None, lambda: alarm_latched(c.alarm)),
        (c.stop_path.busy, lambda: "the last stop is still being handled"),
        (zero_age is None, lambda: "transducer not zeroed"),
        (
            zero_age is not None and zero_age > c.config.zero_max_age_s,
            lambda: "transducer zero is too old",
        ),
        (not injection.request.checklist_confirmed, lambda: "checklist not confirmed"),
        (drug_expired(injection), lambda: "drug past its stability window"),
        (not c.bridge.link_ok or not c.bridge.streaming, lambda: "transducer not streaming"),
        (not c.bridge.scale.calibrated and c.uncalibrated_reason is None, lambda: UNCALIBRATED),
    ]
    for failed, why in checks:
        if failed:
            return why()
    rest = c.supervisor.rest_status()
    return None if rest.settled else rest.why_not_settled()


def drug_expired(injection: Injection, now: datetime | None = None) -> bool:
    request = injection.request
    if request.drug_prepared_utc is None or request.drug_stability_min is None:
        return False
    expires = request.drug_prepared_utc + timedelta(minutes=request.drug_stability_min)
    return (now or datetime.now(UTC)) > expires
