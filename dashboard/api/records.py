"""Read-only views of the record: injections of every session, their traces, the event
log and the procedure report. Nothing here needs the token."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse

from controller.records.report import build_report, to_csv, to_html
from dashboard.runtime import Runtime
from dashboard.views import injection_view, recorded_view

INJECTION_COLUMNS = (
    "id, state, delivered_ml, request_json, created_utc, started_utc, ended_utc, alarm_json"
)


def add_record_routes(api: APIRouter, rt: Runtime) -> None:
    @api.get("/injections")
    async def listing(limit: int = Query(100, ge=1, le=10_000)) -> list[dict[str, Any]]:
        """Newest first: this session's live injections and the recorded ones before them."""
        await rt.recorder.sync()
        rows = await rt.recorder.query(
            f"SELECT {INJECTION_COLUMNS} FROM injections ORDER BY created_utc DESC LIMIT ?",
            (limit,),
        )
        live = rt.controller.injections if rt.controller is not None else {}
        return [
            injection_view(live[r["id"]]) if r["id"] in live else recorded_view(r) for r in rows
        ]

    @api.get("/injections/{injection_id}/trace")
    async def trace(
        injection_id: str, max_points: int = Query(2000, ge=10, le=100_000)
    ) -> dict[str, Any]:
        """The recorded pressure of an injection, thinned to at most ``max_points``."""
        await recorded(rt, injection_id)
        times, pressure = await rt.recorder.pressure(injection_id)
        step = max(1, -(-len(pressure) // max_points))
        return {
            "t_mono_s": times[::step].round(4).tolist(),
            "pressure_mmhg": pressure[::step].round(2).tolist(),
        }

    @api.get("/events")
    async def events(limit: int = Query(200, ge=1, le=10_000)) -> list[dict[str, Any]]:
        rows = await rt.recorder.query(
            "SELECT injection_id, t_utc, kind, detail_json FROM events ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            {
                "injection_id": r["injection_id"],
                "t": r["t_utc"],
                **json.loads(r["detail_json"]),
                "kind": r["kind"],
            }
            for r in rows
        ]

    @api.get("/report", response_model=None)
    async def report(
        format: Literal["json", "csv", "html"] = "json",
    ) -> dict[str, Any] | PlainTextResponse | HTMLResponse:
        await rt.recorder.sync()
        built = await asyncio.to_thread(build_report, rt.settings.db)
        if format == "csv":
            return PlainTextResponse(to_csv(built), media_type="text/csv")
        if format == "html":
            return HTMLResponse(to_html(built))
        return built


async def recorded(rt: Runtime, injection_id: str) -> dict[str, Any]:
    """A recorded injection with its events, or 404."""
    await rt.recorder.sync()
    rows = await rt.recorder.query(
        f"SELECT {INJECTION_COLUMNS} FROM injections WHERE id = ?", (injection_id,)
    )
    if not rows:
        raise HTTPException(404, f"no injection {injection_id}")
    events = await rt.recorder.query(
        "SELECT t_utc, kind, detail_json FROM events WHERE injection_id = ? ORDER BY id",
        (injection_id,),
    )
    return recorded_view(rows[0], events)
