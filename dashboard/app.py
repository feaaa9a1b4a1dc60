"""The FastAPI app: the interface contract's HTTP API and telemetry WebSocket.

Control endpoints need ``Authorization: Bearer <token>`` of a person whose role may do
it (``dashboard.auth``: 401 unknown, 403 a role that may not); reads do not, except a
case's (subject data is not public). Refusals of the state machine are 409 with the
reason, bad input is 422 naming the field and the limit, unknown injections are 404. The
controller and its devices start and stop with the app's lifespan.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.websockets import WebSocketDisconnect

from controller.calibration.transducer import CalibrationError
from controller.injection import StateError
from controller.procedure.casebook import CaseRefused, NoSuchCase
from controller.procedure.limits import LimitRefused
from controller.records.people import CALIBRATES, INJECTS, READS_CASES
from dashboard.api.alarms import STOP_PATH, add_alarm_routes
from dashboard.api.calibration import add_calibration_routes
from dashboard.api.cases import add_case_routes
from dashboard.api.gravimetric import add_gravimetric_routes
from dashboard.api.imaging import add_imaging_routes
from dashboard.api.injections import add_injection_routes
from dashboard.api.procedure import add_procedure_routes
from dashboard.api.records import add_record_routes
from dashboard.api.sim import add_sim_routes
from dashboard.auth import depends
from dashboard.guards import MAX_TELEMETRY_CLIENTS, Guard, header
from dashboard.runtime import Runtime, ServeSettings
from drivers.ne1000_protocol import PumpError
from drivers.transducer_link import BridgeError, BridgeRefused

STATIC = Path(__file__).resolve().parent / "static"


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

    async def known(scope: Any) -> bool:
        return await rt.people.person(header(scope, b"authorization")) is not None

    # outermost first: the Host allowlist, then the guard (auth from headers, body limit)
    app.add_middleware(Guard, authorized=known, public_writes=frozenset({STOP_PATH}))
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))

    control = depends(lambda: rt.people, INJECTS)
    bench = depends(lambda: rt.people, CALIBRATES)
    api = APIRouter(prefix="/api/v1")

    add_injection_routes(api, rt, control)
    add_alarm_routes(api, rt, control)
    add_record_routes(api, rt)
    add_procedure_routes(api, rt, control)
    add_calibration_routes(api, rt, bench)
    add_sim_routes(api, rt, control)
    add_gravimetric_routes(api, lambda: rt.gravimetric, bench)
    add_case_routes(api, rt, reads=depends(lambda: rt.people, READS_CASES), changes=control)
    add_imaging_routes(api, rt, reads=depends(lambda: rt.people, READS_CASES), changes=control)

    _telemetry_route(api, rt)
    app.include_router(api)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    _handlers(app)
    return app


def _telemetry_route(api: APIRouter, rt: Runtime) -> None:
    @api.websocket("/telemetry")
    async def telemetry(socket: WebSocket) -> None:
        origin = socket.headers.get("origin")
        host = socket.headers.get("host", "")
        if origin is not None and origin.split("://", 1)[-1] != host:
            await socket.close(code=1008)
            return
        if len(rt.bus.clients) >= MAX_TELEMETRY_CLIENTS:
            await socket.accept()  # then 1013 (try again later), which a client can read
            await socket.close(code=1013)  # the loop serves a patient first
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


def _handlers(app: FastAPI) -> None:
    def respond(status: int) -> Any:
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        return handler

    app.add_exception_handler(StateError, respond(409))
    app.add_exception_handler(CaseRefused, respond(409))
    app.add_exception_handler(NoSuchCase, respond(404))
    app.add_exception_handler(CalibrationError, respond(409))
    app.add_exception_handler(BridgeRefused, respond(409))
    app.add_exception_handler(LimitRefused, respond(422))
    app.add_exception_handler(ValueError, respond(422))
    app.add_exception_handler(PumpError, respond(503))
    app.add_exception_handler(BridgeError, respond(503))
    app.add_exception_handler(sqlite3.Error, respond(503))  # the record cannot be written
