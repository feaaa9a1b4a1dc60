"""Cases (the contract's "Cases, people and exports"): create, plan, drugs prepared, the
checklist ticked item by item, and the case read back with its injections and actors.
Reads need a token of any role (subject data is not public); changes an operator's or an
automation token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from controller.procedure.casebook import CaseBook
from controller.procedure.cases import CaseCreate, CasePlan, DrugPreparation
from controller.procedure.catalog import load_drugs, load_needles, load_syringes
from controller.procedure.checklist import Tick
from controller.records.exports.render import ExportFormat, export_case
from dashboard.runtime import Runtime


def add_case_routes(api: APIRouter, rt: Runtime, reads: list[Any], changes: list[Any]) -> None:
    def book() -> CaseBook:
        assert rt.cases is not None, "runtime not started"
        return rt.cases

    @api.get("/me")
    async def me(request: Request) -> dict[str, str]:
        """Who this token is (any role): the page's sign-in shows it."""
        found = await rt.people.person(request.headers.get("authorization"))
        if found is None:
            raise HTTPException(401, "needs Authorization: Bearer <token> of a known person")
        return {"name": found.name, "role": str(found.role)}

    @api.get("/catalog")
    async def catalog() -> dict[str, Any]:
        """Syringes, needles and drugs the page's selects offer (the catalogs' ids)."""
        return {
            "syringes": [
                {"id": s.id, "text": f"{s.id} ({s.inner_diameter_mm} mm)"}
                for s in load_syringes().values()
            ],
            "needles": [
                {"id": n.id, "text": f"{n.id} ({n.gauge}G)"} for n in load_needles().values()
            ],
            "drugs": [
                {"id": d.id, "text": d.name, "virotherapy": d.virotherapy}
                for d in load_drugs().values()
            ],
        }

    @api.post("/cases", dependencies=changes, status_code=201)
    async def create(body: CaseCreate) -> dict[str, Any]:
        return await book().create(body)

    @api.get("/cases/{case_id}", dependencies=reads)
    async def read(case_id: str) -> dict[str, Any]:
        return await book().view(case_id)

    @api.put("/cases/{case_id}/plan", dependencies=changes)
    async def plan(case_id: str, body: CasePlan) -> dict[str, Any]:
        return await book().plan(case_id, body)

    @api.post("/cases/{case_id}/drugs", dependencies=changes)
    async def prepare(case_id: str, body: DrugPreparation) -> dict[str, Any]:
        """A drug prepared for this case: lot, time, volume (its stability window runs)."""
        return await book().prepare(case_id, body)

    @api.post("/cases/{case_id}/checklist", dependencies=changes)
    async def tick(case_id: str, body: Tick) -> dict[str, Any]:
        """One checklist item ticked (or unticked) by the caller, at this time."""
        return await book().tick(case_id, body)

    @api.get("/cases/{case_id}/export", dependencies=reads, response_model=None)
    async def export(case_id: str, format: ExportFormat = "json") -> Response:
        """The case in ``json``, printable ``html``, HL7 FHIR R5 (``fhir``), CDISC ODM
        1.3.2 (``odm``), or a REDCap import (``redcap``) and the data dictionary it fits
        (``redcap-dictionary``)."""
        text, media = await export_case(book(), rt.settings.db, case_id, format)
        return Response(text, media_type=media)
