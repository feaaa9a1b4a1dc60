"""A controller wired to a simulator rig through the real drivers, for the controller tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from controller.config import ControllerConfig
from controller.controller import Controller
from controller.injection import InjectionRequest
from controller.recorder import Recorder
from drivers.ne1000 import NE1000
from drivers.transducer import TransducerBridge
from simulator.rig import SimRig


@asynccontextmanager
async def controller_on(
    rig: SimRig, db: Path, config: ControllerConfig | None = None
) -> AsyncIterator[Controller]:
    pump = await NE1000.open(rig.pump_port, command_timeout_s=0.2, retries=1)
    bridge = await TransducerBridge.open(rig.bridge_port)
    recorder = Recorder(db)
    await recorder.start()
    controller = Controller(pump, bridge, recorder, config or ControllerConfig())
    try:
        await controller.start()
        rig.plant.stopcock_to_air = True
        await controller.zero_transducer(samples=300)
        rig.plant.stopcock_to_air = False
        yield controller
    finally:
        await controller.close()
        await bridge.close()
        await pump.close()
        await recorder.close()


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
