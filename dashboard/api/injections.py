"""The injection's own endpoints: health and state, zero, create, start, pause, resume,
stop (acknowledging and silencing an alarm are in ``alarms.py``). Control needs the token
(``control``); reads do not."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from controller.controller import Controller
from controller.injection import InjectionRequest
from controller.procedure.casebook import CaseRefused
from dashboard.api.records import recorded
from dashboard.runtime import Runtime
from dashboard.views import find, injection_view


def add_injection_routes(api: APIRouter, rt: Runtime, control: list[Any]) -> None:
    def controller() -> Controller:
        assert rt.controller is not None, "runtime not started"
        return rt.controller

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
        """With ``case_id`` and ``lesion``: admitted against the case's plan first (409 with
        the reason), under the case book's lock so two requests cannot both take what a
        lesion has left."""
        if request.case_id is None:
            return injection_view(controller().create_injection(request))
        assert rt.cases is not None
        async with rt.cases.lock:
            why = await rt.cases.refusal(request)
            if why is not None:
                raise CaseRefused(why)
            return injection_view(controller().create_injection(request))

    @api.get("/injections/{injection_id}")
    async def read(injection_id: str) -> dict[str, Any]:
        live = controller().injections.get(injection_id)
        return injection_view(live) if live is not None else await recorded(rt, injection_id)

    @api.post("/injections/{injection_id}/start", dependencies=control)
    async def start(injection_id: str) -> dict[str, Any]:
        injection = find(controller(), injection_id)
        if rt.cases is not None:
            why = await rt.cases.why_not_startable(injection.request)
            if why is not None:
                raise CaseRefused(why)
        return injection_view(await controller().start_injection(injection_id))

    @api.post("/injections/{injection_id}/pause", dependencies=control)
    async def pause(injection_id: str) -> dict[str, Any]:
        find(controller(), injection_id)
        return injection_view(await controller().pause_injection(injection_id))

    @api.post("/injections/{injection_id}/resume", dependencies=control)
    async def resume(injection_id: str) -> dict[str, Any]:
        find(controller(), injection_id)
        return injection_view(await controller().resume_injection(injection_id))

    @api.post("/injections/{injection_id}/stop", dependencies=control)
    async def stop(injection_id: str) -> dict[str, Any]:
        find(controller(), injection_id)
        return injection_view(await controller().stop_injection(injection_id))
