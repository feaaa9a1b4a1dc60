"""The procedure plan (targets, aliquots, sectors) and the pre-injection checklist."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from controller.injection import StateError
from controller.procedure.book import ProcedurePlan
from dashboard.runtime import Runtime
from drivers.clock import now_s

# The domain facts' checklist; the operator ticks these, the page sends checklist_confirmed.
CHECKLIST = (
    ("luer_lock", "Luer-lock syringe and connections confirmed (no slip-tip)"),
    ("line_primed", "line primed, no air in the syringe, line or dome"),
    ("needle_position", "needle position confirmed on imaging"),
    ("drug_stability", "drug within its stability window"),
)


def add_procedure_routes(api: APIRouter, rt: Runtime, control: list[Any]) -> None:
    def live() -> list[dict[str, Any]]:
        return [] if rt.controller is None else rt.controller.live_rows()

    @api.get("/procedure")
    async def procedure() -> dict[str, Any]:
        """The plan with each target's progress and what comes next (aliquots, sector)."""
        view = await rt.procedures.view(live())
        if view is None:
            raise HTTPException(404, "no procedure planned")
        return view

    @api.put("/procedure", dependencies=control)
    async def plan(body: ProcedurePlan) -> dict[str, Any]:
        """Set this case's targets (recorded; the page and a restarted server find it again)."""
        if rt.injection_running():
            raise StateError("cannot change the plan while an injection is running")
        await rt.procedures.plan(body)
        view = await rt.procedures.view(live())
        assert view is not None
        return view

    @api.get("/targets/{target}/next-sector")
    async def next_sector(target: str, sectors: int = Query(4, ge=2, le=12)) -> dict[str, int]:
        """Sequential technique: the cycle and sector to inject next, from this target's record."""
        assert rt.controller is not None
        cycle, sector = await rt.controller.propose_sector(target, sectors)
        return {"cycle": cycle, "sector": sector}

    @api.get("/checklist")
    async def checklist() -> dict[str, Any]:
        """What the operator attests, and what the controller itself checks before a start."""
        return {"items": [{"id": i, "text": t} for i, t in CHECKLIST], "gates": gates(rt)}


def gates(rt: Runtime) -> list[dict[str, Any]]:
    c = rt.controller
    assert c is not None
    zero_age = None if c.zeroed_at_mono_s is None else now_s() - c.zeroed_at_mono_s
    zeroed = zero_age is not None and zero_age <= c.config.zero_max_age_s
    health = rt.health()
    return [
        {
            "id": "transducer_zeroed",
            "ok": zeroed,
            "detail": "not zeroed"
            if zero_age is None
            else f"zeroed {zero_age / 60:.0f} min ago (valid {c.config.zero_max_age_s / 60:.0f})",
        },
        {"id": "devices_healthy", "ok": health["status"] == "ok", "detail": health["status"]},
        {
            "id": "no_alarm_latched",
            "ok": c.alarm is None,
            "detail": "" if c.alarm is None else f"{c.alarm.kind}: acknowledge it first",
        },
        {"id": "no_injection_running", "ok": not rt.injection_running(), "detail": ""},
    ]
