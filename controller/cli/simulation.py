"""The built-in simulator as ``serve --sim`` and the served-app tests wire it.

The one place outside ``simulator/`` and the tests that imports the simulator for the
dashboard: the rig in its own process (``RigProcess``, so the devices keep real time
whatever the server does), its links in a temporary folder, and the emulated bench for
the gravimetric test. The dashboard sees it only as ``dashboard.simulation.Simulation``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from controller.calibration.gravimetric_bench import EmulatedBench
from simulator.gravimetric_rig import gravimetric_rig
from simulator.rig_process import RigProcess
from simulator.scenario import FAULT_KINDS, FaultSpec, load_scenario

NOT_FAULT_PARAMETERS = frozenset({"kind", "at_s", "at_volume_ml", "at_rig_s"})


class BuiltInSimulator:
    uncalibrated_reason = "built-in simulator: the emulated bridge's nominal gain"

    def __init__(self, scenario: str) -> None:
        self.scenario = load_scenario(scenario)
        # made at start, not here: a runtime refused at construction leaves nothing behind
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._rig: RigProcess | None = None

    @property
    def rig(self) -> RigProcess:
        if self._rig is None:
            raise RuntimeError("the built-in simulator is not started (call start() first)")
        return self._rig

    @property
    def pump_port(self) -> str:
        return self.rig.pump_port

    @property
    def bridge_port(self) -> str:
        return self.rig.bridge_port

    @property
    def gravimetric_bench(self) -> EmulatedBench:
        return lambda diameter_mm, speed: gravimetric_rig(diameter_mm, speed=speed)

    async def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="injectctl-sim-")
        folder = Path(self._tmp.name)
        self._rig = RigProcess(self.scenario, folder / "pump", folder / "bridge")
        await self._rig.start()

    async def stop(self) -> None:
        try:
            if self._rig is not None:
                await self._rig.stop()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
            self._rig = self._tmp = None

    async def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = await self.rig.request("describe")
        return described

    async def stopcock(self, to: str, reference_mmhg: float | None = None) -> dict[str, Any]:
        turned: dict[str, Any] = await self.rig.request("stopcock", to, reference_mmhg)
        return turned

    def check_fault(self, kind: str, params: dict[str, float]) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind: {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        reserved = sorted(NOT_FAULT_PARAMETERS & set(params))
        if reserved:
            raise ValueError(f"params.{reserved[0]}: not a fault parameter (the fault is now)")
        try:
            FaultSpec.model_validate({"kind": kind, "at_rig_s": 0.0, **params})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise ValueError(f"params.{where}: {first['msg']}") from None

    async def truth(self) -> dict[str, Any]:
        """The true state of the physics, for tests that check what the controller believes
        (the dashboard never asks: the controller knows only what it measures)."""
        return await self.rig.state()

    async def inject(self, kind: str, params: dict[str, float]) -> dict[str, Any]:
        self.check_fault(kind, params)
        return await self.rig.inject(kind, **params)
