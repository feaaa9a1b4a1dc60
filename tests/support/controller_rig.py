"""A controller wired to a simulator rig through the real drivers, for the controller tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from controller.config import ControllerConfig
from controller.controller import Controller
from controller.injection import InjectionRequest
from controller.system import DeviceSettings, SystemSettings, build_system
from drivers.transducer import TransducerBridge
from simulator.rig import SimRig
from tests.support.cli import INJECTCTL

UNCALIBRATED = "HIL test: the emulated bridge's nominal gain"


def system_settings(
    pump_port: str, bridge_port: str, db: Path, config: ControllerConfig | None = None
) -> SystemSettings:
    """What the tests build a system from: these ports, a calibration store of their own
    beside the record (never the user's), the nominal gain accepted and said why."""
    return SystemSettings(
        devices=DeviceSettings(pump_port, bridge_port),
        db=db,
        config=config or ControllerConfig(),
        calibration_dir=db.parent / "calibrations",
        uncalibrated_reason=UNCALIBRATED,
    )


@asynccontextmanager
async def wired_controller(
    pump_port: str, bridge_port: str, db: Path, config: ControllerConfig | None = None
) -> AsyncIterator[Controller]:
    """A started controller on the real drivers at these ports, built by the composition
    root and closed with everything it opened (not zeroed)."""
    system = await build_system(system_settings(pump_port, bridge_port, db, config))
    try:
        yield system.controller
    finally:
        await system.close()


@asynccontextmanager
async def controller_on(
    rig: SimRig, db: Path, config: ControllerConfig | None = None
) -> AsyncIterator[Controller]:
    """A controller on an in-process rig, zeroed with the simulated stopcock open to air."""
    async with wired_controller(rig.pump_port, rig.bridge_port, db, config) as controller:
        rig.plant.stopcock_to_air = True
        await controller.zero_transducer(samples=300)
        rig.plant.stopcock_to_air = False
        yield controller


def request(volume_ml: float = 0.5, rate_ml_min: float = 5.0, **extra: object) -> InjectionRequest:
    return InjectionRequest(
        volume_ml=volume_ml,
        rate_ml_min=rate_ml_min,
        syringe=str(extra.pop("syringe", "bd-luerlok-5ml")),
        needle=str(extra.pop("needle", "22g-coaxial-150mm")),
        drug="saline-37c",
        target="liver segment VI",
        checklist_confirmed=bool(extra.pop("checklist_confirmed", True)),
        **extra,  # type: ignore[arg-type]
    )


def inject_ports(rig: SimRig, db: Path) -> list[str]:
    """``inject``'s ports and record, a calibration store beside the record, nominal gain."""
    return [
        "--pump-port",
        rig.pump_port,
        "--transducer-port",
        rig.bridge_port,
        "--db",
        str(db),
        "--cal-dir",
        str(db.parent / "calibrations"),
        "--uncalibrated",
        UNCALIBRATED,
    ]


async def start_inject(rig: SimRig, db: Path) -> asyncio.subprocess.Process:
    """``injectctl inject`` (2 mL at 3 mL/min) in its own process on the rig, returned once
    it says the injection started (for the kill -9 tests and the chaos sweep)."""
    proc = await asyncio.create_subprocess_exec(
        INJECTCTL,
        "inject",
        *inject_ports(rig, db),
        "--volume-ml",
        "2",
        "--rate-ml-min",
        "3",
        "--checklist-confirmed",
        "--assume-zeroed",
        "HIL test",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        assert (await proc.stdout.readline()).startswith(b"started ")
    return proc


async def sampled_until(
    bridge: TransducerBridge, done: Callable[[], bool], timeout_s: float = 10.0
) -> None:
    """Wait until ``done()`` holds, re-checked on every transducer sample (no polling)."""
    seen = asyncio.Event()
    remove = bridge.add_sample_listener(lambda *_: seen.set())
    try:
        await recheck_on(seen, done, timeout_s)
    finally:
        remove()


async def recheck_on(event: asyncio.Event, done: Callable[[], bool], timeout_s: float) -> None:
    """Wait until ``done()`` holds, re-checked each time ``event`` is set (no polling);
    TimeoutError after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not done():
            event.clear()
            await event.wait()
