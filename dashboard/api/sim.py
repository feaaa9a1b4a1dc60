"""The built-in simulator, from the page: provoke a fault, turn the stopcock.

For training and for the browser tests; 404 when serve runs on real devices.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from dashboard.runtime import Runtime
from dashboard.simulation import Simulation


class SimFault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(max_length=40)
    params: dict[str, float] = Field(
        default_factory=dict,
        max_length=20,
        description="the fault's parameters, e.g. duration_s, fraction (see GET /sim)",
    )


class Stopcock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["line", "air", "reference"]
    reference_mmhg: float | None = Field(default=None, ge=-100, le=1500)


def add_sim_routes(api: APIRouter, rt: Runtime, control: list[Any]) -> None:
    def sim() -> Simulation:
        if rt.sim is None:
            raise HTTPException(404, "serve is running on real devices, not the simulator")
        return rt.sim

    @api.get("/sim")
    async def describe() -> dict[str, Any]:
        """The scenario, the faults that can be provoked, and where the stopcock is."""
        return await sim().describe()

    @api.post("/sim/faults", dependencies=control, status_code=201)
    async def fault(body: SimFault) -> dict[str, Any]:
        """Make the fault happen now, as the scenario files do at their trigger."""
        simulation = sim()
        try:
            simulation.check_fault(body.kind, body.params)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return await simulation.inject(body.kind, body.params)

    @api.put("/sim/stopcock", dependencies=control)
    async def stopcock(body: Stopcock) -> dict[str, Any]:
        """Turn the simulated stopcock: transducer to the line, to air, or to a manometer."""
        if body.to == "reference" and body.reference_mmhg is None:
            raise HTTPException(422, "reference_mmhg: needed when the stopcock is to reference")
        return await sim().stopcock(body.to, body.reference_mmhg)
