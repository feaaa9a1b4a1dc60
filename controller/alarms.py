"""Alarm priorities and pre-alarms: how urgently the operator must act, in IEC 60601-1-8's
three priorities, and the conditions worth a word before they become a refusal or a stop.

A priority is the urgency of the operator's response, not the size of the fault: every
alarm below has already stopped the pump (the control path did that in the same call);
what differs is what is still at stake with a needle in the patient.

- **High** (act at once): the line may be blocked, over its limit or leaking drug into
  the wrong place, or the controller can no longer see the line or trust the pump or
  itself. The needle's position, the patient and the drug left in the line all need the
  operator now (``docs/safety.md``, "Alarm priorities", gives the reasoning per kind).
- **Medium** (act promptly): the record cannot be written. The pump is stopped and the
  patient is not harmed by the failure itself, but nothing more may be given until the
  record is mended.
- **Low** (be aware): the pre-alarms that only say what is coming.

Pre-alarms are not latched: they hold while their condition does and clear by themselves.
The zero getting old and the drug nearing the end of its stability window are medium
(they will refuse the next start, and the operator must re-zero or prepare a drug, which
takes minutes); the end of a fill or aliquot is low (the needle is about to be moved).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from controller.injection import Injection, State
from controller.safety.verdict import VerdictKind


class Priority(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


ALARM_PRIORITY: dict[VerdictKind, Priority] = {
    VerdictKind.OCCLUSION: Priority.HIGH,
    VerdictKind.OVER_PRESSURE: Priority.HIGH,
    VerdictKind.LEAK: Priority.HIGH,
    VerdictKind.SENSOR_FAULT: Priority.HIGH,
    VerdictKind.LINK_LOST: Priority.HIGH,
    VerdictKind.PUMP_FAULT: Priority.HIGH,
    VerdictKind.SOFTWARE_FAULT: Priority.HIGH,
    VerdictKind.RECORDING_FAILED: Priority.MEDIUM,
}


class PreAlarmKind(enum.StrEnum):
    FILL_ENDING = "fill_ending"  # the fill or aliquot ends within FILL_ENDING_S
    ZERO_AGEING = "zero_ageing"  # the zero expires within ZERO_WARNING_S, or has
    DRUG_STABILITY_ENDING = "drug_stability_ending"  # the drug's window ends soon, or has


PRE_ALARM_PRIORITY: dict[PreAlarmKind, Priority] = {
    PreAlarmKind.FILL_ENDING: Priority.LOW,
    PreAlarmKind.ZERO_AGEING: Priority.MEDIUM,
    PreAlarmKind.DRUG_STABILITY_ENDING: Priority.MEDIUM,
}

AUDIO_PAUSED_S = 120  # IEC 60601-1-8 audio paused: re-arms by itself after this
FILL_ENDING_S = 10.0  # time to get a hand to the needle before the aliquot ends
ZERO_WARNING_S = 600.0  # ten minutes: time to re-zero between injections
DRUG_WARNING_MIN = 15.0  # time to finish, or to prepare the next dose


@dataclass(frozen=True, slots=True)
class PreAlarm:
    kind: PreAlarmKind
    detail: str

    @property
    def priority(self) -> Priority:
        return PRE_ALARM_PRIORITY[self.kind]

    def view(self) -> dict[str, str]:
        return {"kind": self.kind, "priority": self.priority, "detail": self.detail}


def alarm_priority(kind: str) -> Priority:
    """An alarm's priority; a kind this build does not know is high (never quieter)."""
    try:
        return ALARM_PRIORITY[VerdictKind(kind)]
    except ValueError:
        return Priority.HIGH


def pre_alarms(
    injection: Injection | None,
    zero_age_s: float | None,
    zero_max_age_s: float,
    now_utc: datetime | None = None,
) -> list[PreAlarm]:
    """What is coming, most urgent first: the zero, the drug, the end of the fill."""
    found = [
        *_zero(zero_age_s, zero_max_age_s),
        *_drug(injection, now_utc or datetime.now(UTC)),
        *_fill(injection),
    ]
    return sorted(found, key=lambda p: list(Priority).index(p.priority))


def _zero(age_s: float | None, max_age_s: float) -> list[PreAlarm]:
    if age_s is None:
        return []
    left_s = max_age_s - age_s
    if left_s <= 0:
        return [PreAlarm(PreAlarmKind.ZERO_AGEING, "the zero has expired: re-zero to start")]
    if left_s <= ZERO_WARNING_S:
        return [
            PreAlarm(
                PreAlarmKind.ZERO_AGEING,
                f"the zero expires in {left_s / 60:.0f} min: re-zero between injections",
            )
        ]
    return []


def _drug(injection: Injection | None, now_utc: datetime) -> list[PreAlarm]:
    if injection is None or injection.state not in (State.READY, State.RUNNING, State.PAUSED):
        return []
    request = injection.request
    if request.drug_prepared_utc is None or request.drug_stability_min is None:
        return []
    ends = request.drug_prepared_utc + timedelta(minutes=request.drug_stability_min)
    left_min = (ends - now_utc).total_seconds() / 60
    if left_min <= 0:
        detail = f"{request.drug} is past its stability window"
    elif left_min <= DRUG_WARNING_MIN:
        detail = f"{request.drug}: {left_min:.0f} min left in its stability window"
    else:
        return []
    return [PreAlarm(PreAlarmKind.DRUG_STABILITY_ENDING, detail)]


def _fill(injection: Injection | None) -> list[PreAlarm]:
    if injection is None or injection.state is not State.RUNNING:
        return []
    rate_ml_min = injection.rate_now_ml_min or injection.request.rate_ml_min
    left_ml = max(0.0, injection.fill_ml - injection.fill_delivered_ml)
    left_s = left_ml / rate_ml_min * 60.0
    if left_s > FILL_ENDING_S:
        return []
    parts = len(injection.checked.fills_ml)
    what = f"aliquot {injection.fill_index + 1} of {parts}" if parts > 1 else "the injection"
    return [PreAlarm(PreAlarmKind.FILL_ENDING, f"{what} ends in {left_s:.0f} s")]
