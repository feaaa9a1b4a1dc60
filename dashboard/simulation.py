"""What the dashboard may ask of the built-in simulator, when ``serve --sim`` gives it one.

The dashboard never imports the simulator: ``serve --sim`` (the CLI's wiring) hands it an
object with this shape. It says where the emulated devices are, turns the simulated
stopcock, provokes faults, describes itself, and offers an emulated gravimetric bench.
On real devices there is none, and the simulator's endpoints answer 404.
"""

from __future__ import annotations

from typing import Any, Protocol

from controller.calibration.gravimetric_bench import EmulatedBench


class Simulation(Protocol):
    @property
    def pump_port(self) -> str: ...

    @property
    def bridge_port(self) -> str: ...

    @property
    def uncalibrated_reason(self) -> str:
        """Why the emulated bridge's nominal gain is acceptable (recorded)."""
        ...

    @property
    def gravimetric_bench(self) -> EmulatedBench: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def describe(self) -> dict[str, Any]: ...

    async def stopcock(self, to: str, reference_mmhg: float | None = None) -> dict[str, Any]:
        """Turn the stopcock: ``line``, ``air`` or ``reference`` (a manometer)."""
        ...

    def check_fault(self, kind: str, params: dict[str, float]) -> None:
        """Raise ``ValueError`` naming the field if the fault or a parameter is invalid."""
        ...

    async def inject(self, kind: str, params: dict[str, float]) -> dict[str, Any]:
        """Make the fault happen now; its onset as the simulator recorded it."""
        ...
