"""The controller on a simulator rig, as the HIL benches and tests use it (ptys or memory).

``operated`` builds the system through the composition root on the rig's ports and does
what the operator does before a start (stopcock to air, zero, stopcock back, wait for the
line to settle); ``start_inject`` runs ``injectctl inject`` in its own process against the
rig (the kill -9 tests and the chaos sweep). Shared by ``bench/`` and ``tests/``, so it
lives here (bench imports no test module).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from controller.calibration.transducer import collect_raw
from controller.config import ControllerConfig
from controller.controller import Controller
from controller.injection import InjectionRequest
from controller.system import DeviceSettings, SystemSettings, build_system
from simulator.rig import SimRig

INJECTCTL = str(Path(sys.executable).parent / "injectctl")
UNCALIBRATED = "HIL: the emulated bridge's nominal gain"
SETTLE_CHECK_SAMPLES = 100  # the rest check runs numpy: every 100 samples is enough
VENT_SAMPLES = 200  # 0.2 s at 1 kHz: far more than the frames in flight


def system_settings(
    pump_port: str,
    bridge_port: str,
    db: Path,
    config: ControllerConfig | None = None,
    staleness_s: float = DeviceSettings.staleness_s,
) -> SystemSettings:
    """These ports, a calibration store of its own beside the record (never the user's),
    the nominal gain accepted and said why. ``staleness_s`` is the product's 20 ms unless
    a test whose subject is something else runs beside another (``tests/support/timing.py``)."""
    return SystemSettings(
        devices=DeviceSettings(pump_port, bridge_port, staleness_s=staleness_s),
        db=db,
        config=config or ControllerConfig(),
        calibration_dir=db.parent / "calibrations",
        uncalibrated_reason=UNCALIBRATED,
    )


@asynccontextmanager
async def operated(
    rig: SimRig,
    db: Path,
    config: ControllerConfig | None = None,
    staleness_s: float = DeviceSettings.staleness_s,
) -> AsyncIterator[Controller]:
    """A started controller on the rig, zeroed with the stopcock to air and waiting on a
    settled line, closed with everything it opened."""
    settings = system_settings(rig.pump_port, rig.bridge_port, db, config, staleness_s)
    system = await build_system(settings)
    forget = rig.add_situation(lambda: situation(system.controller))
    try:
        rig.plant.stopcock_to_air = True
        await vented(system.controller)
        await system.controller.zero_transducer(samples=300)
        rig.plant.stopcock_to_air = False
        await settled(system.controller)
        yield system.controller
    finally:
        forget()
        await system.close()


def situation(controller: Controller) -> str:
    """What a failed wait needs to say of the controller: its alarm, the injection's
    state, the line's, the rest's, the bridge's last flags (an interlock asserted, a
    watchdog expired) and its link's counts."""
    alarm, active = controller.alarm, controller.active
    rest = controller.supervisor.rest_status()
    status = controller.bridge.status  # its flags say whether it tripped, and why
    flags = repr(status.flags) if status is not None else None
    return (
        f"alarm {alarm.kind + ': ' + alarm.detail if alarm else None}; "
        f"injection {active.state.value if active else None}; "
        f"line {controller.supervisor.line.state}; "
        f"rest {'settled' if rest.settled else rest.why_not_settled()}; "
        f"bridge flags {flags}, {controller.bridge.stats}"
    )


async def settled(controller: Controller, timeout_s: float = 60.0) -> None:
    """Until the line has settled at rest after the stopcock (a first fill needs it)."""
    seen = asyncio.Event()
    count = [0]

    def sample(*_: object) -> None:
        count[0] += 1
        if count[0] % SETTLE_CHECK_SAMPLES == 0:
            seen.set()

    remove = controller.bridge.add_sample_listener(sample)
    try:
        async with asyncio.timeout(timeout_s):
            while not controller.supervisor.rest_status().settled:
                seen.clear()
                await seen.wait()
    finally:
        remove()


async def vented(controller: Controller, timeout_s: float = 5.0) -> None:
    """Until samples taken after the stopcock was turned to air have arrived: what the
    operator waits for before zeroing (and what the dashboard's zero waits for). The
    frames in flight when it turned were sampled on the line (population runs wait 1-3 s;
    a zero taken at once had a few of them in its window and was rightly refused as not
    still)."""
    await collect_raw(controller.bridge, VENT_SAMPLES, timeout_s)


def bench_request(
    volume_ml: float = 0.5, rate_ml_min: float = 5.0, **extra: object
) -> InjectionRequest:
    return InjectionRequest.model_validate(
        {
            "volume_ml": volume_ml,
            "rate_ml_min": rate_ml_min,
            "syringe": "bd-luerlok-5ml",
            "needle": "22g-coaxial-150mm",
            "drug": "saline-37c",
            "target": "liver segment VI",
            "checklist_confirmed": True,
            **extra,
        }
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
    it says the injection started (after waiting, as it says, for the line to settle)."""
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
    async with asyncio.timeout(60):
        while not (line := await proc.stdout.readline()).startswith(b"started "):
            if not line:
                raise RuntimeError("injectctl inject ended before it started the injection")
    return proc
