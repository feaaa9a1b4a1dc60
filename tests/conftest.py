"""Shared fixtures. Every async test is checked for tasks it leaves running (a test on the
virtual clock by ``tests.support.controller_rig.on_virtual_rig``)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.ne1000 import NE1000
from drivers.transducer import TransducerBridge
from simulator.bridge_emulator import BridgeEmulator
from simulator.ne1000_emulator import NE1000Emulator
from tests.support.tasks import assert_no_task_left

# Tests that hold devices, servers or a browser to deadlines on the wall clock. `make test`
# runs them after everything else (unit tests, the virtual-clock closed loop: both cores
# busy, beside a real-time test they starved it), two at a time: each mostly waits on its
# devices (three at a time, session 38, passed three runs alone and failed two tests of a
# fresh clone's: docs/performance.md). Those marked `exclusive` come last, one at a time:
# their subject is one of the product's wall-clock limits at its own value (the 20 ms
# staleness rule, the watchdogs, the loop's lateness) or they keep a core busy. The others
# run the transducer at the shared staleness limit, `tests/support/timing.py` says why.
REALTIME_DIRS = ("integration", "system", "unit/drivers")
TESTS_ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        where = item.path.resolve().relative_to(TESTS_ROOT).as_posix()
        realtime = any(where.startswith(d + "/") for d in REALTIME_DIRS)
        if realtime and item.get_closest_marker("virtual_clock") is None:
            item.add_marker(pytest.mark.realtime)


@pytest.fixture(autouse=True)
def session_kept_out_of_the_collector(request: pytest.FixtureRequest) -> None:
    """Before a real-time test (its devices emulated in this process, as hardware that never
    pauses): collect what earlier tests left (a served app torn down is tens of thousands
    of objects in cycles), then freeze what is still alive (the session's imports and
    fixtures) out of the cyclic collector. Else a full collection comes mid-test and holds
    the emulators with it. Measured in session 36 on 21 tests of the second pass (two at a
    time, a collector callback timing each pass): without this, two full collections inside
    tests, of 240 ms (52,629 objects freed, `test_mqtt.py`) and 155 ms (`test_api.py`),
    the likeliest cause of the stalls past 250 ms earlier sessions met and could not trace;
    with it, none, and no collection inside a test over 5 ms. An exclusive run had `inject`
    stop on "no sample from the bridge for 24.4 ms" from an emulator in this process, the
    machine otherwise idle (the collector the likeliest cause). ``simulator.rig_process``
    and the product's processes freeze too
    (``controller.system.keep_built_out_of_the_collector``)."""
    if request.node.get_closest_marker("realtime") is not None:
        gc.collect()
        gc.freeze()


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves a task behind: every task must have an owner that awaits it."""
    before = set(asyncio.all_tasks())
    yield
    await assert_no_task_left(before)


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[NE1000Emulator]:
    async with NE1000Emulator(tmp_path / "pump") as emu:
        yield emu


@pytest.fixture
async def pump(emulator: NE1000Emulator) -> AsyncIterator[NE1000]:
    driver = await NE1000.open(emulator.path, command_timeout_s=0.3)
    try:
        yield driver
    finally:
        await driver.close()


@pytest.fixture
async def bridge_emulator(tmp_path: Path) -> AsyncIterator[BridgeEmulator]:
    async with BridgeEmulator(tmp_path / "bridge", drift_ppm=150.0) as emu:
        yield emu


@pytest.fixture
async def bridge(bridge_emulator: BridgeEmulator) -> AsyncIterator[TransducerBridge]:
    driver = await TransducerBridge.open(bridge_emulator.path)
    try:
        yield driver
    finally:
        await driver.close()
