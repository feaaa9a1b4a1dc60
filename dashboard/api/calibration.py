"""Transducer calibration for the biomedical engineer: bench zero, reference points, fit,
save, history. Refused (409) while an injection runs: the scale must not change under
the supervisor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from controller.calibration.session import CalibrationSession
from controller.calibration.verification import Certificate, Tolerance, to_html
from controller.injection import StateError
from dashboard.runtime import Runtime
from drivers.clock import now_s


class Reading(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples: int = Field(default=1000, ge=100, le=5000, description="samples averaged")


class ReferencePoint(Reading):
    reference_mmhg: float = Field(ge=-100, le=1500, description="the manometer's reading")


class Verify(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tolerance: Tolerance = Tolerance()


def _session_of(rt: Runtime) -> Callable[..., CalibrationSession]:
    def session(changing: bool = False) -> CalibrationSession:
        assert rt.calibration is not None, "runtime not started"
        if changing and rt.injection_running():
            raise StateError("calibration is not possible while an injection is running")
        return rt.calibration

    return session


def add_calibration_routes(api: APIRouter, rt: Runtime, control: list[Any]) -> None:
    """The bench calibration: zero, points against a manometer, fit, save."""
    session = _session_of(rt)

    @api.get("/calibration")
    async def calibration() -> dict[str, Any]:
        """The calibration in force, the points taken so far, the fit, and the history."""
        s = session()
        history = await s.history()
        return {**s.view(), "history": [r.model_dump(mode="json") for r in reversed(history)]}

    @api.post("/calibration/zero", dependencies=control)
    async def zero(body: Reading | None = None) -> dict[str, Any]:
        """Bench zero at atmosphere (transducer open to air); a new dated record, gain kept."""
        record = await session(True).zero((body or Reading()).samples)
        await _changed(rt, "calibration_zeroed", record.note, procedure_zero_valid=True)
        return record.model_dump(mode="json")

    @api.post("/calibration/points", dependencies=control, status_code=201)
    async def point(body: ReferencePoint) -> dict[str, Any]:
        taken = await session(True).take_point(body.reference_mmhg, body.samples)
        return taken.model_dump(mode="json")

    @api.delete("/calibration/points", dependencies=control)
    async def clear() -> dict[str, Any]:
        session(True).clear()
        return session().view()

    @api.post("/calibration/fit", dependencies=control)
    async def fit() -> dict[str, Any]:
        """Least-squares fit of the points taken; look at it, then save or clear."""
        return session(True).fit().model_dump(mode="json")

    @api.post("/calibration/save", dependencies=control)
    async def save() -> dict[str, Any]:
        record = await session(True).save_fitted()
        await _changed(rt, "calibration_saved", record.method, procedure_zero_valid=False)
        return record.model_dump(mode="json")

    add_verification_routes(api, rt, control)


def add_verification_routes(api: APIRouter, rt: Runtime, control: list[Any]) -> None:
    """Verification against a reference manometer, and its stored certificates."""
    session = _session_of(rt)

    @api.post("/calibration/verify/points", dependencies=control, status_code=201)
    async def verify_point(body: ReferencePoint) -> dict[str, Any]:
        """Verification: the reading with the calibration in force against the manometer."""
        point = await session(True).check_point(body.reference_mmhg, body.samples, Tolerance())
        return point.model_dump(mode="json")

    @api.post("/calibration/verify", dependencies=control)
    async def verify(body: Verify | None = None) -> dict[str, Any]:
        """Judge the points against the tolerance; store and return the certificate."""
        certificate, path = await session(True).certify((body or Verify()).tolerance)
        await _recorded(rt, "transducer_verified", certificate.passed)
        return {**certificate.model_dump(mode="json"), "html": _html_url(path.stem)}

    @api.get("/calibration/verifications")
    async def verifications() -> list[dict[str, Any]]:
        found = await session().certificates()
        return [
            {**c.model_dump(mode="json"), "html": _html_url(_stamp(c))} for c in reversed(found)
        ]

    @api.get("/calibration/verifications/{stamp}.html", response_class=HTMLResponse)
    async def certificate_page(stamp: str) -> HTMLResponse:
        """The printable certificate."""
        for c in await session().certificates():
            if _stamp(c) == stamp:
                return HTMLResponse(to_html(c))
        raise HTTPException(404, f"no verification {stamp}")


async def _changed(rt: Runtime, kind: str, what: str, procedure_zero_valid: bool) -> None:
    """Record the change; a new gain or offset from the bench voids the procedure zero."""
    c = rt.controller
    assert c is not None and rt.bridge is not None
    c.zeroed_at_mono_s = now_s() if procedure_zero_valid else None
    await c.recorder.event(None, kind, {"what": what, "scale": rt.bridge.scale.source}, now_s())


async def _recorded(rt: Runtime, kind: str, passed: bool) -> None:
    c = rt.controller
    assert c is not None
    await c.recorder.event(None, kind, {"passed": passed}, now_s())


def _stamp(certificate: Certificate) -> str:
    return certificate.created_utc.strftime("%Y%m%dT%H%M%S%fZ")


def _html_url(stamp: str) -> str:
    return f"/api/v1/calibration/verifications/{stamp}.html"
