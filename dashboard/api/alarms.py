"""The alarm: acknowledging it (the contract's, it clears the latch), silencing its sound,
and the STOP that nothing may block.

``POST /alarms/silence`` pauses the page's sound for ``AUDIO_PAUSED_S`` (the visual signal
stays; the alarm stays latched until acknowledged); it is recorded with who silenced it.

``POST /stop`` stops whatever is running for anyone at the page, with or without a
credential: a token that expired, was revoked or was never entered must not stand between
the operator and the pump stopping (issue 21). The contract's
``/injections/{id}/stop`` keeps its token; this one only ever moves the system to its safe
state, names the person when the token is known, and otherwise records the stop as by an
unidentified person at the client's address. ``docs/security.md`` weighs what it opens.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from controller.alarms import AUDIO_PAUSED_S
from controller.controller import Controller
from controller.injection import FINAL
from controller.records.actors import act_as
from dashboard.runtime import Runtime
from dashboard.views import injection_view
from drivers.clock import now_s

STOP_PATH = "/api/v1/stop"  # a write the guard lets through without a token


def add_alarm_routes(api: APIRouter, rt: Runtime, control: list[Any]) -> None:
    def controller() -> Controller:
        assert rt.controller is not None, "runtime not started"
        return rt.controller

    @api.post("/alarms/acknowledge", dependencies=control)
    async def acknowledge() -> dict[str, Any]:
        """Clears the latch (the contract's); refused while the cause remains."""
        verdict = await controller().acknowledge()
        return {"acknowledged": None if verdict is None else verdict.kind}

    @api.post("/alarms/silence", dependencies=control)
    async def silence() -> dict[str, Any]:
        """Audio paused for two minutes, then it sounds again by itself (the page keeps the
        time); the alarm stays latched and shown."""
        c = controller()
        kinds = [] if c.alarm is None else [str(c.alarm.kind)]
        detail = {"kinds": kinds, "for_s": AUDIO_PAUSED_S}
        await c.recorder.event(None, "alarm_silenced", detail, now_s())
        return {"silenced_s": AUDIO_PAUSED_S, "kinds": kinds}

    @api.post("/stop")
    async def stop_now(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        """STOP whatever runs: the same stop as the injection's, with or without a token.
        The person is looked up in what is loaded only: no read of the record stands
        before the pump stops (a person added in the last second is "unidentified")."""
        person = rt.people.known(authorization)
        client = request.client.host if request.client is not None else "unknown address"
        by = person.name if person is not None else f"unidentified at {client}"
        act_as(by)
        c = controller()
        active = c.active
        if active is None or active.state in FINAL:
            return {"stopped": None, "by": by, "identified": person is not None}
        injection = await c.stop_injection(active.id)
        return {
            "stopped": injection.id,
            "by": by,
            "identified": person is not None,
            "injection": injection_view(injection),
        }
