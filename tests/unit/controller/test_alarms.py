"""Alarm priorities and pre-alarms (issue 21): every alarm kind has a priority, the unknown
is never quieter than high, and each pre-alarm appears before its condition and clears."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.alarms import (
    ALARM_PRIORITY,
    DRUG_WARNING_MIN,
    FILL_ENDING_S,
    ZERO_WARNING_S,
    PreAlarm,
    PreAlarmKind,
    Priority,
    alarm_priority,
    pre_alarms,
)
from controller.injection import Injection, InjectionRequest, State
from controller.procedure.admission import admit
from controller.procedure.limits import LimitsConfig
from controller.safety.verdict import VerdictKind

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
MAX_AGE_S = 3600.0


def injection(**request: object) -> Injection:
    body = {
        "volume_ml": 1.0,
        "rate_ml_min": 1.0,
        "syringe": "bd-luerlok-5ml",
        "needle": "22g-coaxial-150mm",
        "target": "liver VI",
        "checklist_confirmed": True,
        **request,
    }
    checked, path = admit(InjectionRequest.model_validate(body), LimitsConfig())
    return Injection(InjectionRequest.model_validate(body), checked, path)


def kinds(found: list[PreAlarm]) -> list[str]:
    return [p.kind for p in found]


def test_every_alarm_kind_has_a_priority_and_the_patient_ones_are_high() -> None:
    assert set(ALARM_PRIORITY) == set(VerdictKind)
    for kind in ("occlusion", "over_pressure", "leak", "link_lost"):
        assert alarm_priority(kind) is Priority.HIGH
    assert alarm_priority("recording_failed") is Priority.MEDIUM
    assert alarm_priority("a-kind-from-a-newer-build") is Priority.HIGH


def test_the_zero_warns_ten_minutes_before_it_expires_and_after() -> None:
    fresh = pre_alarms(None, MAX_AGE_S - ZERO_WARNING_S - 1, MAX_AGE_S, NOW)
    ageing = pre_alarms(None, MAX_AGE_S - ZERO_WARNING_S + 1, MAX_AGE_S, NOW)
    expired = pre_alarms(None, MAX_AGE_S + 1, MAX_AGE_S, NOW)
    assert fresh == [] and pre_alarms(None, None, MAX_AGE_S, NOW) == []
    assert kinds(ageing) == [PreAlarmKind.ZERO_AGEING] and "expires in 10 min" in ageing[0].detail
    assert ageing[0].priority is Priority.MEDIUM
    assert "expired" in expired[0].detail


def test_the_drug_warns_before_its_window_ends_while_it_is_to_be_given() -> None:
    window_min = 60.0
    near = injection(
        drug_prepared_utc=NOW - timedelta(minutes=window_min - DRUG_WARNING_MIN + 1),
        drug_stability_min=window_min,
    )
    found = pre_alarms(near, 0.0, MAX_AGE_S, NOW)
    assert kinds(found) == [PreAlarmKind.DRUG_STABILITY_ENDING], found
    assert "14 min left" in found[0].detail
    early = injection(drug_prepared_utc=NOW, drug_stability_min=window_min)
    assert pre_alarms(early, 0.0, MAX_AGE_S, NOW) == []
    near.state = State.COMPLETED  # given: nothing left to warn about
    assert pre_alarms(near, 0.0, MAX_AGE_S, NOW) == []


def test_the_end_of_an_aliquot_is_announced_while_running_only() -> None:
    radial = injection(volume_ml=1.0, rate_ml_min=1.0, aliquots=2)  # 0.5 mL in 30 s each
    radial.state = State.RUNNING
    radial.fill_delivered_ml = 0.5 - (FILL_ENDING_S + 1) / 60.0
    assert pre_alarms(radial, 0.0, MAX_AGE_S, NOW) == []
    radial.fill_delivered_ml = 0.5 - (FILL_ENDING_S - 2) / 60.0
    found = pre_alarms(radial, 0.0, MAX_AGE_S, NOW)
    assert kinds(found) == [PreAlarmKind.FILL_ENDING] and found[0].priority is Priority.LOW
    assert found[0].detail == "aliquot 1 of 2 ends in 8 s"
    radial.state = State.PAUSED
    assert pre_alarms(radial, 0.0, MAX_AGE_S, NOW) == []


def test_pre_alarms_come_most_urgent_first() -> None:
    running = injection(drug_prepared_utc=NOW - timedelta(minutes=50), drug_stability_min=60.0)
    running.state = State.RUNNING
    running.fill_delivered_ml = running.fill_ml
    found = pre_alarms(running, MAX_AGE_S, MAX_AGE_S, NOW)
    assert [p.priority for p in found] == [Priority.MEDIUM, Priority.MEDIUM, Priority.LOW]
