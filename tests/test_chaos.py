"""Chaos: faults injected into a running controller, with the simulator in its own process
as real devices would be (so stalling the controller does not stall them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from controller.config import ControllerConfig
from controller.controller import Controller
from controller.injection import State
from controller.recorder import Recorder
from drivers.ne1000 import NE1000
from drivers.transducer import TransducerBridge
from simulator.rig_process import RigProcess
from simulator.scenario import load_scenario
from tests.controller_rig import request

pytestmark = pytest.mark.chaos


@pytest.fixture
async def apart(tmp_path: Path) -> AsyncIterator[tuple[RigProcess, Controller]]:
    """A controller on the real drivers; the simulated devices in another process."""
    rig = RigProcess(load_scenario("normal-liver-saline-1ml"), tmp_path / "pump", tmp_path / "br")
    await rig.start()
    pump = await NE1000.open(rig.pump_port, command_timeout_s=0.2, retries=1)
    bridge = await TransducerBridge.open(rig.bridge_port)
    recorder = Recorder(tmp_path / "db.sqlite")
    await recorder.start()
    controller = Controller(pump, bridge, recorder, ControllerConfig())
    try:
        await controller.start()
        await rig.request("stopcock", "air")
        await controller.zero_transducer(samples=300)
        await rig.request("stopcock", "line")
        yield rig, controller
    finally:
        await controller.close()
        await bridge.close()
        await pump.close()
        await recorder.close()
        await rig.stop()


async def sampled_until(controller: Controller, done: Callable[[], bool], timeout_s: float) -> None:
    """Re-check ``done`` on every transducer sample (no polling)."""
    seen = asyncio.Event()
    remove = controller.bridge.add_sample_listener(lambda *_: seen.set())
    try:
        async with asyncio.timeout(timeout_s):
            while not done():
                seen.clear()
                await seen.wait()
    finally:
        remove()


async def test_a_hung_event_loop_is_caught_by_the_bridge_watchdog(
    apart: tuple[RigProcess, Controller],
) -> None:
    """A component holds the loop for 400 ms mid-injection: nothing feeds the bridge's
    250 ms WATCHDOG, so the bridge asserts its interlock and the pump stops on its own;
    when the loop comes back the controller reports it and does not carry on."""
    rig, controller = apart
    injection = controller.create_injection(request(volume_ml=2.0, rate_ml_min=2.0))
    await controller.start_injection(injection.id)
    await sampled_until(controller, lambda: injection.delivered_ml > 0.02, 10)
    assert (await rig.state())["pump_moving"]
    time.sleep(0.4)  # noqa: ASYNC251 - the misbehaving component: it blocks the loop
    during = await rig.state()
    assert during["interlock"] and not during["pump_moving"]
    await sampled_until(controller, lambda: injection.state is State.ALARM, 5)
    assert controller.alarm is not None and controller.alarm.kind == "link_lost"
    assert "watchdog" in controller.alarm.detail or "interlock" in controller.alarm.detail


async def test_a_short_stall_is_not_a_fault(apart: tuple[RigProcess, Controller]) -> None:
    """100 ms of a busy loop is well inside the watchdog and the staleness rule's allowance
    for a late host: the injection carries on."""
    rig, controller = apart
    injection = controller.create_injection(request(volume_ml=1.0, rate_ml_min=2.0))
    await controller.start_injection(injection.id)
    await sampled_until(controller, lambda: injection.delivered_ml > 0.02, 10)
    time.sleep(0.1)  # noqa: ASYNC251 - a busy host, not a hung one
    delivered = injection.delivered_ml
    await sampled_until(controller, lambda: injection.delivered_ml > delivered + 0.02, 10)
    assert injection.state is State.RUNNING and controller.alarm is None
    assert (await rig.state())["pump_moving"]
