"""Shared fixtures. Every async test is checked for tasks it leaves running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.ne1000 import NE1000
from drivers.transducer import TransducerBridge
from simulator.bridge_emulator import BridgeEmulator
from simulator.ne1000_emulator import NE1000Emulator


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves a task behind: every task must have an owner that awaits it."""
    before = set(asyncio.all_tasks())
    yield
    for _ in range(3):  # let transports finish their own close callbacks
        await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    assert not leaked, f"tasks leaked by the test: {leaked}"


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
