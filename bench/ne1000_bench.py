"""NE-1000 link benchmarks over a real pty (emulator in the same event loop).

1. Status-query round trip through the driver, against a baseline of the same
   bytes written and read with the bare transport (the driver's overhead).
2. ``stop()`` called to STP bytes leaving: to the OS write, and to the bytes
   reaching the emulator; against the baseline of a stop that queues behind a
   command already in flight (what a lock-per-command driver would do).

Run: ``make bench`` (or ``.venv/bin/python -m bench.ne1000_bench``).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.stats import summary_us
from drivers.ne1000 import NE1000
from drivers.transport import open_serial
from simulator.ne1000_emulator import NE1000Emulator

N_ROUND_TRIPS = 1000
N_STOPS = 300


async def bench_round_trip(emu: NE1000Emulator) -> None:
    pump = await NE1000.open(emu.path)
    try:
        driver_s = []
        for _ in range(N_ROUND_TRIPS):
            t0 = time.perf_counter()
            await pump.status()
            driver_s.append(time.perf_counter() - t0)
    finally:
        await pump.close()
    raw = await open_serial(emu.path)
    try:
        raw_s = []
        for _ in range(N_ROUND_TRIPS):
            t0 = time.perf_counter()
            raw.write_nowait(b"0\r")
            await raw.read_frame(0x02, 0x03, 1.0)
            raw_s.append(time.perf_counter() - t0)
    finally:
        await raw.close()
    print("status round trip over a pty")
    print(f"  driver.status()            {summary_us(driver_s)}")
    print(f"  baseline bare transport    {summary_us(raw_s)}")


async def bench_stop(emu: NE1000Emulator) -> None:
    arrived: list[float] = []
    original = emu.link.on_bytes

    def spy(data: bytes, t: float) -> None:
        if b"STP" in data:
            arrived.append(time.perf_counter())
        original(data, t)

    emu.link.on_bytes = spy
    pump = await NE1000.open(emu.path)
    to_os, to_pump, queued = [], [], []
    try:
        for _ in range(N_STOPS):
            t0 = time.perf_counter()
            fut = pump.stop_nowait()
            to_os.append(time.perf_counter() - t0)
            await fut
            to_pump.append(arrived[-1] - t0)
        emu.faults.answer_late(0.005)  # a query in flight for 5 ms, as on a real pump
        for _ in range(N_STOPS // 3):
            query = asyncio.create_task(pump.status())
            await asyncio.sleep(0)
            t0 = time.perf_counter()
            await pump._command("STP", retry=False)  # waits for the lock, like a naive driver
            queued.append(arrived[-1] - t0)
            await query
        emu.faults.answer_late(0.0)
    finally:
        await pump.close()
        emu.link.on_bytes = original
    print("stop() called -> STP bytes leaving")
    print(f"  stop_nowait(): written to OS  {summary_us(to_os)}")
    print(f"  stop_nowait(): at the pump    {summary_us(to_pump)}")
    print(f"  baseline queued behind query  {summary_us(queued)}")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with NE1000Emulator(Path(tmp) / "pump") as emu:
            await bench_round_trip(emu)
            await bench_stop(emu)


if __name__ == "__main__":
    asyncio.run(main())
