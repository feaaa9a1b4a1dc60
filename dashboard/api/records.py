"""Read-only views of the record: injections of every session, their traces, the event
log and the procedure report. Nothing here needs the token."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from controller.records import queries
from controller.records.report import build_report, to_csv, to_html
from dashboard.runtime import Runtime
from dashboard.views import injection_view, recorded_view


def add_record_routes(api: APIRouter, rt: Runtime) -> None:
    @api.get("/injections")
    async def listing(limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
        """Newest first: this session's live injections and the recorded ones before them."""
        await rt.recorder.sync()
        rows = await rt.recorder.read(queries.recent_injections, limit)
        live = rt.controller.injections if rt.controller is not None else {}
        return [
            injection_view(live[r["id"]]) if r["id"] in live else recorded_view(r) for r in rows
        ]

    @api.get("/injections/{injection_id}/trace")
    async def trace(injection_id: str, max_points: int = Query(2000, ge=10, le=20_000)) -> Response:
        """The recorded pressure of an injection, thinned to at most ``max_points``; NaN
        (null) where samples were lost. Read, thinned and serialised off the loop."""
        await recorded(rt, injection_id)
        times, pressure = await rt.recorder.pressure(injection_id)
        body = await asyncio.to_thread(_thinned_json, times, pressure, max_points)
        return Response(body, media_type="application/json")

    @api.get("/events")
    async def events(limit: int = Query(200, ge=1, le=1000)) -> list[dict[str, Any]]:
        rows = await rt.recorder.read(queries.recent_events, limit)
        return [
            {
                "injection_id": r["injection_id"],
                "t": r["t_utc"],
                **json.loads(r["detail_json"]),
                "kind": r["kind"],
                "actor": r["actor"],
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


def _thinned_json(times: Any, pressure: Any, max_points: int) -> bytes:
    step = max(1, -(-len(pressure) // max_points))
    values = [None if math.isnan(p) else round(float(p), 2) for p in pressure[::step]]
    return json.dumps(
        {"t_mono_s": times[::step].round(4).tolist(), "pressure_mmhg": values}
    ).encode()


async def recorded(rt: Runtime, injection_id: str) -> dict[str, Any]:
    """A recorded injection with its events, or 404."""
    await rt.recorder.sync()
    row = await rt.recorder.read(queries.injection, injection_id)
    if row is None:
        raise HTTPException(404, f"no injection {injection_id}")
    events = await rt.recorder.read(queries.injection_events, injection_id)
    return recorded_view(row, events)
