"""The procedure in progress: its plan and how far each target has got.

The plan is recorded as an event when it is set (so a restarted server, or another
page, finds it again); progress is computed from the injections of the record, not
kept separately, so it cannot disagree with them. The controller's own injections of
this session overlay their rows: a running injection's volume moves as it is delivered,
and one that has just ended counts before its last row reaches the record.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from controller.procedure.limits import split_evenly
from controller.procedure.plan import Procedure, Target, Technique, next_sector
from controller.records import queries
from controller.records.recorder import Recorder
from drivers.clock import now_s

PLANNED = "procedure_planned"
COUNTED = ("completed", "stopped", "alarm", "interrupted", "running", "paused")


class ProcedurePlan(BaseModel):
    """What the operator plans (PUT /procedure): the targets of this case."""

    model_config = ConfigDict(extra="forbid")

    case_ref: str = Field(default="", max_length=80)
    targets: list[Target] = Field(min_length=1, max_length=20)


class ProcedureBook:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.procedure: Procedure | None = None

    async def load(self) -> Procedure | None:
        """The last plan recorded, if any."""
        row = await self.recorder.read(queries.latest_event_of_kind, PLANNED)
        if row is not None:
            self.procedure = Procedure.model_validate_json(row["detail_json"])
        return self.procedure

    async def plan(self, plan: ProcedurePlan) -> Procedure:
        labels = [t.label for t in plan.targets]
        if len(set(labels)) != len(labels):
            raise ValueError("targets: labels must be unique within a procedure")
        procedure = Procedure(
            id=uuid.uuid4().hex[:12], case_ref=plan.case_ref, targets=plan.targets
        )
        await self.recorder.event(None, PLANNED, procedure.model_dump(mode="json"), now_s())
        self.procedure = procedure
        return procedure

    async def view(self, live: Iterable[dict[str, Any]] = ()) -> dict[str, Any] | None:
        """The plan with each target's delivered volume, injections, and what comes next.
        ``live``: the controller's injection rows, newer than the record's for their ids."""
        if self.procedure is None:
            return None
        await self.recorder.sync()
        recorded = await self.recorder.read(queries.injections_in_states, COUNTED)
        rows = {row["id"]: dict(row) for row in recorded}
        rows.update({row["id"]: row for row in live if row["state"] in COUNTED})
        by_target: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(rows.values(), key=lambda r: str(r["created_utc"])):
            request = json.loads(row["request_json"])
            by_target.setdefault(request.get("target", ""), []).append(
                {**request, "state": row["state"], "delivered_ml": row["delivered_ml"]}
            )
        views = []
        for target in self.procedure.targets:
            history = by_target.get(target.label, [])
            mine = [i for i in history if i.get("procedure_id") == self.procedure.id]
            views.append(_target_view(target, mine, history))
        return {"id": self.procedure.id, "case_ref": self.procedure.case_ref, "targets": views}


def _target_view(
    target: Target, injections: list[dict[str, Any]], history: list[dict[str, Any]]
) -> dict[str, Any]:
    """``injections``: this procedure's (they count against its volume); ``history``: every
    injection of this target, earlier cycles included (the sequential technique's record)."""
    delivered = sum(float(i["delivered_ml"] or 0.0) for i in injections)
    view: dict[str, Any] = {
        **target.model_dump(mode="json"),
        "warnings": target.warnings(),
        "delivered_ml": round(delivered, 4),
        "injections": len(injections),
        "remaining_ml": round(max(0.0, target.volume_ml - delivered), 4),
    }
    if target.injected and target.volume_ml > 0:
        view["aliquots_ml"] = list(split_evenly(target.volume_ml, target.aliquots))
    if target.technique is Technique.SEQUENTIAL:
        sectors_done = [
            (int(i["cycle"]), int(i["sector"]))
            for i in history
            if i.get("cycle") and i.get("sector") and i["state"] not in ("running", "paused")
        ]
        cycle, sector = next_sector(sectors_done, target.sectors)
        view["next"] = {"cycle": cycle, "sector": sector}
    return view
