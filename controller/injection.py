"""An injection: the operator's request, the checked plan, and its state machine.

    ready -> running <-> paused -> completed | stopped | alarm | interrupted

A start that an alarm interrupts goes from ``ready`` to ``alarm`` directly (the RUN may
have gone out; the stop path handles it like any other).

``completed``, ``stopped``, ``alarm`` and ``interrupted`` are final. A move the
machine does not allow raises ``StateError`` naming the state it is in.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.procedure.catalog import DEFAULT_LINE
from controller.procedure.fluid_path import FluidPath
from controller.procedure.limits import CheckedInjection
from controller.records.recorder import utc_now
from controller.safety.verdict import Verdict


class State(enum.StrEnum):
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    ALARM = "alarm"
    INTERRUPTED = "interrupted"


FINAL = {State.COMPLETED, State.STOPPED, State.ALARM, State.INTERRUPTED}
MOVES: dict[State, set[State]] = {
    State.READY: {State.RUNNING, State.STOPPED, State.ALARM, State.INTERRUPTED},
    State.RUNNING: {State.PAUSED, State.COMPLETED, State.STOPPED, State.ALARM, State.INTERRUPTED},
    State.PAUSED: {State.RUNNING, State.STOPPED, State.ALARM, State.INTERRUPTED},
}


class StateError(RuntimeError):
    """The move is not allowed from the current state (the API answers 409)."""


class InjectionRequest(BaseModel):
    """What the operator asks for (the contract's POST /injections body; more fields allowed)."""

    model_config = ConfigDict(extra="allow")

    volume_ml: float = Field(gt=0)
    rate_ml_min: float = Field(gt=0)
    syringe: str
    needle: str
    target: str
    line: str = Field(default=DEFAULT_LINE, description="extension line and transducer set")
    checklist_confirmed: bool = False
    drug: str = "saline"
    pressure_limit_mmhg: float | None = None
    pressure_ceiling_mmhg: float | None = Field(
        default=None,
        gt=0,
        le=1000,
        description="pressure-limited mode: slow the pump to hold the line under this",
    )
    override_reason: str | None = None
    aliquots: int = Field(default=1, ge=1, le=12, description="radial: needle positions")
    cycle: int | None = Field(default=None, ge=1, description="sequential: treatment cycle")
    sector: int | None = Field(default=None, ge=1, description="sequential: sector")
    drug_prepared_utc: datetime | None = None
    drug_stability_min: float | None = Field(default=None, gt=0)
    case_id: str | None = Field(default=None, max_length=40, description="the case it belongs to")
    lesion: str | None = Field(default=None, max_length=80, description="the case plan's label")

    @model_validator(mode="after")
    def _case_and_lesion_together(self) -> InjectionRequest:
        if (self.case_id is None) != (self.lesion is None):
            raise ValueError("case_id, lesion: give both (a case's lesion) or neither")
        return self


@dataclass
class Injection:
    request: InjectionRequest
    checked: CheckedInjection
    path: FluidPath  # resolved from the catalogs once, when the injection was created
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: State = State.READY
    created_utc: str = field(default_factory=utc_now)
    started_utc: str | None = None
    ended_utc: str | None = None
    fill_index: int = 0
    delivered_before_fill_ml: float = 0.0
    fill_delivered_ml: float = 0.0
    fill_target_ml: float = 0.0  # this fill's volume as the pump accepted it (rounded)
    fill_clock_mono_s: float = 0.0  # when this fill would have started at its rate, no pauses
    alarm: Verdict | None = None
    alarm_utc: str | None = None
    waiting_for: str | None = None
    rate_now_ml_min: float | None = None  # pressure-limited mode: what the pump runs at
    dis_read_mono_s: float = 0.0  # when fill_delivered_ml was last read from the pump
    # set when the pump went quiet before its last reading: fill_delivered_ml is then the
    # estimate, and this says from what (``delivery.py``)
    delivery_estimate: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def delivered_ml(self) -> float:
        return self.delivered_before_fill_ml + self.fill_delivered_ml

    @property
    def fill_ml(self) -> float:
        return self.checked.fills_ml[self.fill_index]

    @property
    def last_fill(self) -> bool:
        return self.fill_index == len(self.checked.fills_ml) - 1

    def move(self, to: State) -> None:
        if to not in MOVES.get(self.state, set()):
            raise StateError(f"injection {self.id} is {self.state}; it cannot become {to}")
        self.state = to
        if to is State.RUNNING and self.started_utc is None:
            self.started_utc = utc_now()
        if to in FINAL:
            self.ended_utc = utc_now()

    def note(self, event: str, **detail: Any) -> dict[str, Any]:
        entry = {"t": utc_now(), **detail, "kind": event}
        self.events.append(entry)
        return entry

    def row(self, session_id: str) -> dict[str, Any]:
        """The recorder's ``injections`` row."""
        alarm = None
        if self.alarm is not None:
            alarm = {"kind": self.alarm.kind, "at": self.alarm_utc, "detail": self.alarm.detail}
        return {
            "id": self.id,
            "session_id": session_id,
            "created_utc": self.created_utc,
            "state": str(self.state),
            "request_json": self.request.model_dump_json(),
            "started_utc": self.started_utc,
            "ended_utc": self.ended_utc,
            "delivered_ml": round(self.delivered_ml, 6),
            "before_fill_ml": round(self.delivered_before_fill_ml, 6),
            "alarm_json": json.dumps(alarm) if alarm else None,
        }
