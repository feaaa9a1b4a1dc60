"""Chaos: faults injected into a running controller, with the simulator in its own process
as real devices would be (so stalling the controller does not stall them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.hil import settled, vented
from controller.controller import Controller
from controller.injection import Injection, State
from simulator.rig_process import RigProcess
from simulator.scenario import load_scenario
from tests.support.controller_rig import request, sampled_until, wired_controller
from tests.support.timing import PRODUCT_STALENESS_S as PRODUCT

# Alone: stalls of the loop against the product's 20 ms staleness rule and watchdogs.
pytestmark = [pytest.mark.chaos, pytest.mark.exclusive]


@pytest.fixture
async def apart(tmp_path: Path) -> AsyncIterator[tuple[RigProcess, Controller]]:
    """A controller on the real drivers; the simulated devices in another process."""
    rig = RigProcess(load_scenario("normal-liver-saline-1ml"), tmp_path / "pump", tmp_path / "br")
    await rig.start()
    try:
        db = tmp_path / "db.sqlite"
        async with wired_controller(rig.pump_port, rig.bridge_port, db, staleness_s=PRODUCT) as c:
            await rig.request("stopcock", "air")
            await vented(c)
            await c.zero_transducer(samples=300)
            await rig.request("stopcock", "line")
            await settled(c)  # a first fill starts on a line at rest
            assert c.alarm is None, c.alarm
            yield rig, c
    finally:
        await rig.stop()


async def delivering(controller: Controller, injection: Injection, case: str = "") -> None:
    """Until the pump has delivered 20 uL more than now; if not within 10 s, the failure
    says what the controller saw (an alarm, a stuck state), after ``case``."""
    target_ml = injection.delivered_ml + 0.02
    try:
        await sampled_until(controller.bridge, lambda: injection.delivered_ml > target_ml, 10)
    except TimeoutError:
        alarm = controller.alarm
        latched = f"{alarm.kind}: {alarm.detail}" if alarm else "none"
        raise AssertionError(
            f"{case}{': ' if case else ''}not delivering after 10 s: injection "
            f"{injection.state.value}, {injection.delivered_ml:.4f} mL; alarm {latched}"
        ) from None


async def test_a_hung_event_loop_is_caught_by_the_bridge_watchdog(
    apart: tuple[RigProcess, Controller],
) -> None:
    """A component holds the loop for 400 ms mid-injection: nothing feeds the bridge's
    250 ms WATCHDOG, so the bridge asserts its interlock and the pump stops on its own;
    when the loop comes back the controller reports it and does not carry on."""
    rig, controller = apart
    injection = controller.create_injection(request(volume_ml=2.0, rate_ml_min=2.0))
    await controller.start_injection(injection.id)
    await delivering(controller, injection)
    assert (await rig.state())["pump_moving"]
    time.sleep(0.4)  # noqa: ASYNC251 - the misbehaving component: it blocks the loop
    during = await rig.state()
    assert during["interlock"] and not during["pump_moving"]
    await sampled_until(controller.bridge, lambda: injection.state is State.ALARM, 5)
    assert controller.alarm is not None and controller.alarm.kind == "link_lost"
    assert "watchdog" in controller.alarm.detail or "interlock" in controller.alarm.detail


class AlarmWatch:
    """Wakes on the recorder's committed alarm: works even when no sample arrives."""

    def __init__(self, controller: Controller) -> None:
        self.raised = asyncio.Event()
        controller.recorder.observers.append(self._on_record)

    def _on_record(self, what: str, record: dict[str, object]) -> None:
        if what == "alarm":
            self.raised.set()


# (faults at once, the alarm they must raise, bound from the fault to the pump stopped)
Faults = list[tuple[str, dict[str, float]]]
STOPPING: dict[str, tuple[Faults, str | None, float]] = {
    "transducer unplugged": ([("bridge_silence", {})], "link_lost", 0.1),
    "pump unplugged": ([("pump_silence", {})], "link_lost", 0.6),
    "both unplugged": ([("bridge_silence", {}), ("pump_silence", {})], "link_lost", 2.6),
    "bridge reboots": ([("bridge_reboot", {})], "link_lost", 0.3),
    "pump resets (brown-out)": ([("pump_reset", {})], None, 0.6),
    "pump answers too late": ([("pump_slow", {"delay_s": 0.6})], "link_lost", 1.0),
}
# None: the loop held 100 ms. The slow pump last: it stays slow.
RIDDEN_OUT: dict[str, Faults | None] = {
    "a 100 ms stall of the loop": None,
    "garbage burst on the bridge link": [("bridge_garbage", {"n_bytes": 300})],
    "garbage burst on the pump link": [("pump_garbage", {"n_bytes": 50})],
    "a corrupted pump reply": [("pump_corrupt", {"count": 1})],
    "pump answers slowly, within its timeout": [("pump_slow", {"delay_s": 0.05})],
}


@pytest.mark.parametrize("case", list(STOPPING))
async def test_a_device_fault_mid_injection_ends_in_a_stopped_pump(
    apart: tuple[RigProcess, Controller], case: str
) -> None:
    rig, controller = apart
    faults, kind, bound_s = STOPPING[case]
    watch = AlarmWatch(controller)
    injection = controller.create_injection(request(volume_ml=2.0, rate_ml_min=2.0))
    await controller.start_injection(injection.id)
    await delivering(controller, injection)
    injected_at = time.monotonic()
    for fault, params in faults:
        await rig.inject(fault, **params)
    stopped_at = await rig.request("pump_stopped", 5.0)
    async with asyncio.timeout(5):
        await watch.raised.wait()
    assert stopped_at - injected_at < bound_s, (case, stopped_at - injected_at)
    assert controller.alarm is not None and injection.state is State.ALARM
    if kind is not None:
        assert controller.alarm.kind == kind, controller.alarm


async def test_a_short_stall_and_line_noise_mid_injection_are_ridden_out(
    apart: tuple[RigProcess, Controller],
) -> None:
    """Disturbances that are no fault, one after another in the same injection (as a long
    one may meet them; each would cost a rig of its own, 13 s, to run apart): 100 ms of a
    busy loop is well inside the watchdog and the staleness rule's allowance for a late
    host; a garbage burst is resynchronised past, a corrupted or slow pump reply retried.
    After each, the injection must go on delivering with no alarm and the pump moving."""
    rig, controller = apart
    injection = controller.create_injection(request(volume_ml=2.0, rate_ml_min=2.0))
    await controller.start_injection(injection.id)
    await delivering(controller, injection)
    for case, faults in RIDDEN_OUT.items():
        if faults is None:
            time.sleep(0.1)  # noqa: ASYNC251 - a busy host, not a hung one
        for fault, params in faults or []:
            await rig.inject(fault, **params)
        await delivering(controller, injection, case)
        alarm = controller.alarm
        assert injection.state is State.RUNNING and alarm is None, (case, alarm)
        assert (await rig.state())["pump_moving"], case
