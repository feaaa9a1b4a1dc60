"""A controller wired to a simulator rig through the real drivers, for the controller tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from bench.hil import operated, system_settings
from controller.config import ControllerConfig
from controller.controller import Controller
from controller.injection import Injection, InjectionRequest
from controller.system import build_system
from drivers.transducer import TransducerBridge
from simulator.pytest_plugin import DEFAULT_SCENARIO
from simulator.rig import SimRig
from simulator.scenario import load_scenario
from simulator.virtual_clock import run_virtual
from tests.support.tasks import assert_no_task_left
from tests.support.timing import PRODUCT_STALENESS_S, SHARED_STALENESS_S, limits_for


@asynccontextmanager
async def wired_controller(
    pump_port: str,
    bridge_port: str,
    db: Path,
    config: ControllerConfig | None = None,
    staleness_s: float = SHARED_STALENESS_S,
) -> AsyncIterator[Controller]:
    """A started controller on the real drivers at these ports, built by the composition
    root and closed with everything it opened (not zeroed). ``staleness_s``: the shared
    limit unless the test is about the 20 ms rule (``tests/support/timing.py``)."""
    settings = system_settings(
        pump_port, bridge_port, db, limits_for(staleness_s, config), staleness_s
    )
    system = await build_system(settings)
    try:
        yield system.controller
    finally:
        await system.close()


def controller_on(
    rig: SimRig,
    db: Path,
    config: ControllerConfig | None = None,
    staleness_s: float = SHARED_STALENESS_S,
) -> AbstractAsyncContextManager[Controller]:
    """The controller zeroed on the rig, on a settled line (``bench.hil.operated``), at the
    shared staleness limit unless the test is about the 20 ms rule."""
    return operated(rig, db, limits_for(staleness_s, config), staleness_s)


def controller_on_virtual(
    rig: SimRig, db: Path, config: ControllerConfig | None = None
) -> AbstractAsyncContextManager[Controller]:
    """``controller_on`` for a test on the virtual clock, at the product's 20 ms staleness
    rule (no neighbour can starve a virtual-clock loop)."""
    return controller_on(rig, db, config, PRODUCT_STALENESS_S)


def memory_rig(scenario: str = DEFAULT_SCENARIO) -> SimRig:
    """A rig on memory ports, for a test on the virtual clock (``simulator.virtual_clock``:
    a pty's kernel buffer has no virtual time)."""
    tag = uuid.uuid4().hex[:10]
    return SimRig(load_scenario(scenario), f"memory://pump-{tag}", f"memory://bridge-{tag}")


def on_virtual_rig(body: Callable[[SimRig], Awaitable[None]]) -> None:
    """Run ``body`` with a memory-port rig of the default scenario on a fresh virtual-clock
    loop, failing if it leaves a task running (the autouse check sees another loop)."""

    async def main() -> None:
        before = set(asyncio.all_tasks())
        async with memory_rig() as rig:
            await body(rig)
        await assert_no_task_left(before)

    run_virtual(main)


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


@contextmanager
def fault_inside(
    controller: Controller,
    method: str,
    fault: Callable[[], Awaitable[None]],
    *,
    before: bool = True,
) -> Iterator[None]:
    """Make the pump driver's ``method`` run ``fault`` just before (or after) its own
    exchange with the pump, so the fault lands exactly at that await of a start; the
    driver's own method is back once the block ends."""
    original = getattr(controller.pump, method)

    async def with_fault(*args: Any, **kwargs: Any) -> Any:
        if before:
            await fault()
        result = await original(*args, **kwargs)
        if not before:
            await fault()
        return result

    setattr(controller.pump, method, with_fault)
    try:
        yield
    finally:
        delattr(controller.pump, method)


async def infusing(
    controller: Controller, rig: SimRig, volume_ml: float = 2.0, rate_ml_min: float = 3.0
) -> Injection:
    """An injection started and delivering (0.05 mL in), for a fault to land on."""
    injection = controller.create_injection(request(volume_ml, rate_ml_min))
    await controller.start_injection(injection.id)
    await rig.until(lambda: rig.plant.delivered_ml > 0.05)
    return injection
