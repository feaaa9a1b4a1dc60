"""Pump gravimetric accuracy reports, and on the simulator a test run from the page.

Reports from ``injectctl gravimetric`` and from the page share the calibration
store, so the Calibration tab shows every one of them with its trumpet curve.
Starting a test from the page is offered on the simulator only: it runs on an
emulated bench (pump and balance on their own ptys, faster than real time),
never on the pump that serves injections. On real devices the test needs the
balance on a second port and the pump off the patient line: the CLI does that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.calibration.gravimetric_bench import GravimetricBench
from controller.calibration.gravimetric_record import find_report, load_reports
from controller.calibration.gravimetric_run import (
    GravimetricPlan,
    GravimetricReport,
)
from controller.procedure.catalog import CatalogError

log = logging.getLogger(__name__)
BASE = "/api/v1/calibration/pump/gravimetric"


class GravimetricRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    syringe: str = Field(default="bd-luerlok-5ml", description="syringe id")
    rate_ml_h: float = Field(default=1.0, gt=0, le=500)
    duration_min: float = Field(default=120.0, ge=4, le=240)
    interval_s: float = Field(default=30.0, ge=5, le=120)
    tolerance_pct: float = Field(default=2.0, gt=0, le=20)
    speed: float = Field(default=120.0, ge=1, le=1000, description="times real time")


def add_gravimetric_routes(
    api: APIRouter, bench_of: Callable[[], GravimetricBench | None], control: list[Any]
) -> None:
    def the_bench() -> GravimetricBench:
        found = bench_of()
        if found is None:
            raise HTTPException(503, "the server is starting")
        return found

    @api.get("/calibration/pump/gravimetric")
    async def reports() -> list[dict[str, Any]]:
        """Every stored report, newest first, without the raw weights."""
        found = await asyncio.to_thread(load_reports, the_bench().directory)
        return [_summary(r) for r in reversed(found)]

    @api.get("/calibration/pump/gravimetric/run")
    async def progress() -> dict[str, Any]:
        """The test started from the page: running, samples done, the outcome."""
        return the_bench().progress

    @api.post("/calibration/pump/gravimetric/run", dependencies=control, status_code=202)
    async def run(body: GravimetricRequest | None = None) -> dict[str, Any]:
        """Start a test on the emulated bench (simulator only)."""
        bench = the_bench()
        if bench.emulated is None:
            raise HTTPException(
                409, "on real devices run `injectctl gravimetric` with the balance's port"
            )
        if bench.running:
            raise HTTPException(409, "a gravimetric test is already running")
        request = body or GravimetricRequest()
        bench.start(_plan(request), request.speed)
        return the_bench().progress

    @api.get("/calibration/pump/gravimetric/{stamp}.png", response_class=FileResponse)
    async def curves(stamp: str) -> FileResponse:
        return FileResponse(_path(the_bench(), stamp, ".png"), media_type="image/png")

    @api.get("/calibration/pump/gravimetric/{stamp}.html", response_class=HTMLResponse)
    async def page(stamp: str) -> HTMLResponse:
        """The printable report; its image is the PNG beside it."""
        text = await asyncio.to_thread(_path(the_bench(), stamp, ".html").read_text)
        return HTMLResponse(text)

    @api.get("/calibration/pump/gravimetric/{stamp}")
    async def report(stamp: str) -> dict[str, Any]:
        """One report whole: every weight, the flow series, the trumpet."""
        path = _path(the_bench(), stamp, ".json")
        found = GravimetricReport.model_validate_json(await asyncio.to_thread(path.read_text))
        return {**found.model_dump(mode="json"), **_links(found.stamp)}


def _plan(request: GravimetricRequest) -> GravimetricPlan:
    try:
        return GravimetricPlan.for_syringe(
            request.syringe,
            rate_ml_h=request.rate_ml_h,
            duration_min=request.duration_min,
            interval_s=request.interval_s,
            tolerance_pct=request.tolerance_pct,
        )
    except CatalogError as exc:
        raise HTTPException(422, f"syringe: {exc}") from None
    except ValidationError as exc:
        raise HTTPException(422, exc.errors()[0]["msg"]) from None


def _path(bench: GravimetricBench, stamp: str, suffix: str) -> Path:
    found = find_report(bench.directory, stamp)
    if found is None or not found.with_suffix(suffix).is_file():
        raise HTTPException(404, f"no gravimetric report {stamp}")
    return found.with_suffix(suffix)


def _links(stamp: str) -> dict[str, str]:
    return {"png": f"{BASE}/{stamp}.png", "html": f"{BASE}/{stamp}.html", "json": f"{BASE}/{stamp}"}


def _summary(r: GravimetricReport) -> dict[str, Any]:
    return {
        "stamp": r.stamp,
        "created_utc": r.created_utc.isoformat(),
        "pump_id": r.pump_id,
        "syringe": r.plan.syringe,
        "rate_ml_h": r.plan.rate_ml_h,
        "duration_min": r.plan.duration_min,
        "mean_error_pct": r.mean_error_pct,
        "tolerance_pct": r.plan.tolerance_pct,
        "passed": r.passed,
        "iec_conforming": r.iec_conforming,
        "clock_speed": r.clock_speed,
        "trumpet": [t.model_dump() for t in r.trumpet],
        "notes": r.notes,
        **_links(r.stamp),
    }
