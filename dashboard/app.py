"""The FastAPI app: the interface contract's HTTP API and telemetry WebSocket.

Control endpoints need ``Authorization: Bearer <token>`` (compared in constant time);
reads do not. Refusals of the state machine are 409 with the reason, bad input is 422
naming the field and the limit, unknown injections are 404. The controller and its
devices start and stop with the app's lifespan.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect

from controller.calibration import CalibrationError
from controller.controller import Controller
from controller.injection import Injection, InjectionRequest, StateError
from controller.limits import LimitRefused
from controller.report import build_report, to_csv, to_html
from dashboard.runtime import Runtime, ServeSettings
from drivers.ne1000_protocol import PumpError
from drivers.transducer_link import BridgeError, BridgeRefused

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = Path(__file__).resolve().parent.parent / "node_modules" / "uplot" / "dist"


def create_app(settings: ServeSettings, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await rt.start()
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPI(
        title="injectctl",
        description="Intratumoral injection controller. Research use only; not a cleared "
        "medical device.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.runtime = rt

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = f"Bearer {settings.token}".encode()
        given = (authorization or "").encode()
        if not secrets.compare_digest(given, expected):
            raise HTTPException(401, "control needs Authorization: Bearer <token>")

    def controller() -> Controller:
        assert rt.controller is not None, "runtime not started"
        return rt.controller

    control = [Depends(require_token)]
    api = APIRouter(prefix="/api/v1")

    @api.get("/health")
    async def health() -> dict[str, Any]:
        return rt.health()

    @api.get("/state")
    async def state() -> dict[str, Any]:
        return rt.state()

    @api.post("/transducer/zero", dependencies=control)
    async def zero() -> dict[str, Any]:
        return {"zero_counts": await rt.zero()}

    @api.post("/injections", dependencies=control, status_code=201)
    async def create(request: InjectionRequest) -> dict[str, Any]:
        return _view(controller().create_injection(request))

    @api.get("/injections/{injection_id}")
    async def read(injection_id: str) -> dict[str, Any]:
        return _view(_find(controller(), injection_id))

    @api.post("/injections/{injection_id}/start", dependencies=control)
    async def start(injection_id: str) -> dict[str, Any]:
        _find(controller(), injection_id)
        return _view(await controller().start_injection(injection_id))

    @api.post("/injections/{injection_id}/pause", dependencies=control)
    async def pause(injection_id: str) -> dict[str, Any]:
        _find(controller(), injection_id)
        return _view(await controller().pause_injection(injection_id))

    @api.post("/injections/{injection_id}/resume", dependencies=control)
    async def resume(injection_id: str) -> dict[str, Any]:
        _find(controller(), injection_id)
        return _view(await controller().resume_injection(injection_id))

    @api.post("/injections/{injection_id}/stop", dependencies=control)
    async def stop(injection_id: str) -> dict[str, Any]:
        _find(controller(), injection_id)
        return _view(await controller().stop_injection(injection_id))

    _record_routes(api, rt)

    @api.post("/alarms/acknowledge", dependencies=control)
    async def acknowledge() -> dict[str, Any]:
        verdict = await controller().acknowledge()
        return {"acknowledged": None if verdict is None else verdict.kind}

    _telemetry_route(api, rt)
    app.include_router(api)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if VENDOR.is_dir():  # uPlot, installed from npm by the README's commands (no CDN)
        app.mount("/vendor", StaticFiles(directory=VENDOR), name="vendor")

    _handlers(app)
    return app


def _record_routes(api: APIRouter, rt: Runtime) -> None:
    """Read-only: the injections of this session, recorded traces, the event log, reports."""

    def controller() -> Controller:
        assert rt.controller is not None, "runtime not started"
        return rt.controller

    @api.get("/injections")
    async def listing() -> list[dict[str, Any]]:
        return [_view(i) for i in controller().injections.values()]

    @api.get("/injections/{injection_id}/trace")
    async def trace(
        injection_id: str, max_points: int = Query(2000, ge=10, le=100_000)
    ) -> dict[str, Any]:
        """The recorded pressure of an injection, thinned to at most ``max_points``."""
        times, pressure = await rt.recorder.pressure(injection_id)
        step = max(1, -(-len(pressure) // max_points))
        return {
            "t_mono_s": times[::step].round(4).tolist(),
            "pressure_mmhg": pressure[::step].round(2).tolist(),
        }

    @api.get("/targets/{target}/next-sector")
    async def next_sector(target: str, sectors: int = Query(4, ge=2, le=12)) -> dict[str, int]:
        """Sequential technique: the cycle and sector to inject next, from this target's record."""
        cycle, sector = await controller().propose_sector(target, sectors)
        return {"cycle": cycle, "sector": sector}

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
                "kind": r["kind"],
                **json.loads(r["detail_json"]),
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


def _telemetry_route(api: APIRouter, rt: Runtime) -> None:
    @api.websocket("/telemetry")
    async def telemetry(socket: WebSocket) -> None:
        origin = socket.headers.get("origin")
        host = socket.headers.get("host", "")
        if origin is not None and origin.split("://", 1)[-1] != host:
            await socket.close(code=1008)
            return
        await socket.accept()
        client = rt.bus.subscribe()
        try:
            await socket.send_json({"type": "state", **rt.state()})
            while True:
                await client.wake.wait()
                if client.overflowed:
                    await socket.close(code=1013)
                    return
                for message in client.next_messages():
                    await socket.send_text(message)
        except WebSocketDisconnect:
            pass
        finally:
            rt.bus.unsubscribe(client)


def _find(controller: Controller, injection_id: str) -> Injection:
    injection = controller.injections.get(injection_id)
    if injection is None:
        raise HTTPException(404, f"no injection {injection_id}")
    return injection


def _view(injection: Injection) -> dict[str, Any]:
    alarm = None
    if injection.alarm is not None:
        alarm = {
            "kind": injection.alarm.kind,
            "at": injection.alarm_utc,
            "detail": injection.alarm.detail,
        }
    return {
        "id": injection.id,
        "state": str(injection.state),
        "delivered_ml": round(injection.delivered_ml, 4),
        "volume_ml": injection.request.volume_ml,
        "rate_ml_min": injection.request.rate_ml_min,
        "target": injection.request.target,
        "fills_ml": list(injection.checked.fills_ml),
        "waiting_for": injection.waiting_for,
        "alarm": alarm,
        "events": injection.events,
    }


def _handlers(app: FastAPI) -> None:
    def respond(status: int) -> Any:
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        return handler

    app.add_exception_handler(StateError, respond(409))
    app.add_exception_handler(CalibrationError, respond(409))
    app.add_exception_handler(BridgeRefused, respond(409))
    app.add_exception_handler(LimitRefused, respond(422))
    app.add_exception_handler(ValueError, respond(422))
    app.add_exception_handler(PumpError, respond(503))
    app.add_exception_handler(BridgeError, respond(503))
