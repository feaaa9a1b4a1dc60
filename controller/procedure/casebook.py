"""The cases in the record: create, plan, prepare drugs, tick the checklist, and admit an
injection against its case's plan.

Everything a case is comes back from the record (its row, its events, its injections),
so a restarted server or a second page sees the same case. Each change is an event with
its actor (``records.actors``), in the hash chain. Admission and creation of a case's
injection happen under one lock, so two requests cannot both take the last of a lesion's
volume.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from controller.imaging import selection as imaging
from controller.imaging.selection import ImageSelection
from controller.injection import InjectionRequest
from controller.procedure import checklist
from controller.procedure.admission import fluid_path
from controller.procedure.cases import (
    FINAL_STATES,
    Asked,
    CaseCreate,
    CasePlan,
    DrugPreparation,
    Given,
    refusal,
)
from controller.procedure.catalog import Drug, load_drugs
from controller.procedure.plan import Technique, next_sector
from controller.records import queries
from controller.records.recorder import Recorder, utc_now
from drivers.clock import now_s

CREATED, PLANNED, PREPARED = "case_created", "case_planned", "drug_prepared"


class CaseRefused(RuntimeError):
    """The case or its plan does not allow this (the API answers 409 with the reason)."""


class NoSuchCase(LookupError):
    """No case by that id (404)."""


class CaseBook:
    def __init__(self, recorder: Recorder, drugs: Callable[[], dict[str, Drug]] = load_drugs):
        self.recorder = recorder
        self.drugs = drugs
        self.lock = asyncio.Lock()  # admission and creation of a case's injection, together

    # ------------------------------------------------------------ changes (recorded)
    async def create(self, body: CaseCreate) -> dict[str, Any]:
        case_id = uuid.uuid4().hex[:12]
        info = body.model_dump(exclude={"subject", "cycle"})
        row = {
            "id": case_id,
            "created_utc": utc_now(),
            "subject": body.subject,
            "cycle": body.cycle,
            "info_json": json.dumps(info),
        }
        await self.recorder.case(row)
        await self._event(case_id, CREATED, subject=body.subject, cycle=body.cycle, **info)
        return await self.view(case_id)

    async def plan(self, case_id: str, plan: CasePlan) -> dict[str, Any]:
        await self._row(case_id)
        catalog = self.drugs()
        for lesion in plan.lesions:
            unknown = [drug for drug in lesion.drugs if drug not in catalog]
            if unknown:
                raise ValueError(
                    f"lesions: drug {unknown[0]!r} of lesion {lesion.label!r} is not in the "
                    f"catalog (it has {', '.join(sorted(catalog))})"
                )
        plan_json = plan.model_dump_json()
        await self.recorder.case_plan(case_id, plan_json)
        await self._event(case_id, PLANNED, plan=json.loads(plan_json))
        return await self.view(case_id)

    async def prepare(self, case_id: str, preparation: DrugPreparation) -> dict[str, Any]:
        plan = _plan(await self._row(case_id))
        if preparation.drug not in self.drugs():
            raise ValueError(f"drug: {preparation.drug!r} is not in the catalog")
        planned = {drug for lesion in (plan.lesions if plan else []) for drug in lesion.drugs}
        if preparation.drug not in planned:
            raise CaseRefused(f"drug {preparation.drug!r} is not in the case's plan")
        await self._event(case_id, PREPARED, **preparation.model_dump(mode="json"))
        return await self.view(case_id)

    async def select_image(self, case_id: str, selection: ImageSelection) -> dict[str, Any]:
        """An image or series chosen for a lesion of the plan (the archive's own UIDs)."""
        plan = _plan(await self._row(case_id))
        labels = [lesion.label for lesion in (plan.lesions if plan else [])]
        if selection.lesion not in labels:
            raise CaseRefused(
                f"lesion {selection.lesion!r} is not in the case's plan ({', '.join(labels)})"
                if labels
                else "plan the case's lesions before choosing their images"
            )
        await self._event(case_id, imaging.SELECTED, **selection.model_dump(mode="json"))
        return await self.view(case_id)

    async def record_report(self, case_id: str, uids: dict[str, str]) -> None:
        """The structured report written back to the archive (its UIDs)."""
        await self._event(case_id, imaging.SR_STORED, **uids)

    async def tick(self, case_id: str, tick: checklist.Tick) -> dict[str, Any]:
        row = await self._row(case_id)
        keys = {item.key for item in checklist.items_for(self._virotherapy(_plan(row)))}
        if tick.item not in keys:
            raise ValueError(
                f"item: {tick.item!r} is not on this case's checklist ({sorted(keys)})"
            )
        await self._event(case_id, checklist.TICKED, **tick.model_dump())
        return await self.view(case_id)

    # ------------------------------------------------------------ injections
    async def refusal(self, request: InjectionRequest) -> str | None:
        """Why this case-bound request may not be made (None: it may). Hold ``lock`` from
        this call until the injection is created."""
        assert request.case_id is not None and request.lesion is not None
        row = await self._row(request.case_id)
        path = fluid_path(request)
        asked = Asked(request.lesion, path.drug, path.needle, request.volume_ml)
        given = [_given(r) for r in await self.recorder.read(queries.case_injections, row["id"])]
        events = await self._events(row["id"])
        return refusal(_plan(row), asked, given, _preparations(events))

    async def why_not_startable(self, request: InjectionRequest) -> str | None:
        """A case's injection starts only with the pre- and per-procedure items ticked and
        its drug still within its stability window."""
        if request.case_id is None:
            return None
        row = await self._row(request.case_id)
        events = await self._events(row["id"])
        items = checklist.items_for(self._virotherapy(_plan(row)))
        missing = checklist.missing(
            items, _ticks(events), {checklist.Phase.PRE, checklist.Phase.PER}
        )
        if missing:
            return f"checklist not complete: {missing[0]}" + (
                f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            )
        drug = self.drugs().get(request.drug)
        preparation = _preparations(events).get(request.drug)
        expires = preparation.expires(drug) if preparation and drug else None
        if expires is not None and datetime.now(UTC) > expires:
            return f"drug {request.drug!r} expired {expires.isoformat(timespec='minutes')}"
        return None

    # ------------------------------------------------------------ reading
    async def view(self, case_id: str) -> dict[str, Any]:
        """The case: plan with each lesion's progress and next step, drugs, checklist,
        injections, and every event with its actor."""
        await self.recorder.sync()
        row = await self._row(case_id)
        plan, events = _plan(row), await self._events(case_id)
        injections = [dict(r) for r in await self.recorder.read(queries.case_injections, case_id)]
        history = await self.recorder.read(queries.subject_injections, row["subject"])
        items = checklist.items_for(self._virotherapy(plan))
        ticked = _ticks(events)
        viewed = [_event_view(e) for e in events]
        return {
            "id": row["id"],
            "subject": row["subject"],
            "cycle": row["cycle"],
            **json.loads(row["info_json"]),
            "created_utc": row["created_utc"],
            "status": _status(plan, items, ticked),
            "plan": None if plan is None else {"lesions": _lesions(plan, injections, history, row)},
            "drugs": [p.model_dump(mode="json") for p in _preparations(events).values()],
            "checklist": checklist.view(items, ticked),
            "injections": [_injection_summary(i) for i in injections],
            "imaging": imaging.selections(viewed),
            "imaging_reports": imaging.reports(viewed),
            "events": viewed,
        }

    async def _row(self, case_id: str) -> Any:
        row = await self.recorder.read(queries.case, case_id)
        if row is None:
            raise NoSuchCase(f"no case {case_id}")
        return row

    async def _events(self, case_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.recorder.read(queries.case_events, case_id)]

    async def _event(self, case_id: str, kind: str, **detail: Any) -> None:
        await self.recorder.event(None, kind, {"case_id": case_id, **detail}, now_s())

    def _virotherapy(self, plan: CasePlan | None) -> bool:
        catalog = self.drugs()
        planned = {drug for lesion in (plan.lesions if plan else []) for drug in lesion.drugs}
        return any(catalog[d].virotherapy for d in planned if d in catalog)


def _plan(row: Any) -> CasePlan | None:
    return None if row["plan_json"] is None else CasePlan.model_validate_json(row["plan_json"])


def _given(row: Any) -> Given:
    request = json.loads(row["request_json"])
    return Given(
        lesion=request.get("lesion") or "",
        drug=request.get("drug", ""),
        state=row["state"],
        volume_ml=float(request["volume_ml"]),
        delivered_ml=float(row["delivered_ml"] or 0.0),
    )


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = json.loads(event["detail_json"])
    return detail


def _preparations(events: list[dict[str, Any]]) -> dict[str, DrugPreparation]:
    """The last preparation recorded for each drug."""
    found: dict[str, DrugPreparation] = {}
    for event in events:
        if event["kind"] == PREPARED:
            detail = {k: v for k, v in _detail(event).items() if k != "case_id"}
            found[detail["drug"]] = DrugPreparation.model_validate(detail)
    return found


def _ticks(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return checklist.state(
        {**_detail(e), "actor": e["actor"], "t_utc": e["t_utc"]}
        for e in events
        if e["kind"] == checklist.TICKED
    )


def _status(plan: CasePlan | None, items: list[checklist.Item], ticked: dict[str, Any]) -> str:
    if plan is None:
        return "unplanned"
    if not checklist.missing(items, ticked, set(checklist.Phase)):
        return "complete"
    return "planned"


def _lesions(
    plan: CasePlan, injections: list[dict[str, Any]], history: list[Any], row: Any
) -> list[dict[str, Any]]:
    views = []
    for lesion in plan.lesions:
        mine = [
            _given(i)
            for i in injections
            if json.loads(i["request_json"]).get("lesion") == lesion.label
        ]
        delivered = sum(g.delivered_ml for g in mine)
        counted = sum(g.counted_ml for g in mine)
        view: dict[str, Any] = {
            **lesion.model_dump(mode="json"),
            "warnings": lesion.warnings(),
            "delivered_ml": round(delivered, 4),
            "remaining_ml": round(max(0.0, lesion.volume_ml - counted), 4),
            "injections": len(mine),
            "drugs_given": sorted(
                {g.drug for g in mine if g.state in FINAL_STATES and g.delivered_ml > 0}
            ),
        }
        if lesion.injected and lesion.technique is Technique.RADIAL:
            view["aliquots_ml"] = lesion.aliquots_ml()
        if lesion.injected and lesion.technique is Technique.SEQUENTIAL:
            view["next"] = _next_sector(lesion.label, lesion.sectors, history, row["cycle"])
        views.append(view)
    return views


def _next_sector(label: str, sectors: int, history: list[Any], cycle: int) -> dict[str, int]:
    """Clockwise from this subject's last sector of this lesion, in an earlier cycle."""
    done = []
    for item in history:
        request = json.loads(item["request_json"])
        if (
            request.get("lesion") == label
            and request.get("sector")
            and item["state"] in FINAL_STATES
        ):
            done.append((int(item["case_cycle"]), int(request["sector"])))
    earlier = [d for d in done if d[0] < cycle]
    _, sector = next_sector(earlier, sectors)
    this_cycle = [s for c, s in done if c == cycle]
    return {"cycle": cycle, "sector": this_cycle[-1] if this_cycle else sector}


def _injection_summary(row: dict[str, Any]) -> dict[str, Any]:
    request = json.loads(row["request_json"])
    return {
        "id": row["id"],
        "lesion": request.get("lesion"),
        "drug": request.get("drug"),
        "state": row["state"],
        "volume_ml": request.get("volume_ml"),
        "delivered_ml": row["delivered_ml"],
        "sector": request.get("sector"),
        "aliquots": request.get("aliquots"),
    }


def _event_view(event: dict[str, Any]) -> dict[str, Any]:
    detail = {k: v for k, v in _detail(event).items() if k != "case_id"}
    return {
        "t": event["t_utc"],
        "kind": event["kind"],
        "actor": event["actor"],
        "injection_id": event["injection_id"],
        **detail,
    }
