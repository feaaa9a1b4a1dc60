"""From an anomalous pressure sample reaching the host to STP bytes leaving for the pump.

A controller runs an injection on the simulator rig over ptys; the bridge emulator is
made to send one sample over the pressure limit; the time from that sample reaching
the controller's sample listeners to the pump transport's ``write_nowait`` returning
with STP is taken with ``perf_counter``. Baseline in the same run: the same verdict
handed through an ``asyncio.Queue`` to a consumer task that then stops the pump, as a
design with a queue hop on the control path would. (Decoding the frame before the
listeners costs about 3 us per sample: see ``bench.bridge_bench``.)

Run: ``make bench`` (or ``.venv/bin/python -m bench.stop_path_bench``).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.hil import bench_request as request
from bench.hil import operated as controller_on
from bench.stats import summary_us
from controller.controller import Controller
from controller.injection import State
from simulator.rig import SimRig
from simulator.scenario import load_scenario

RUNS = 30


async def one_run(folder: Path, queued: bool) -> float:
    rig = SimRig(load_scenario("normal-liver-saline-1ml"), folder / "pump", folder / "bridge")
    await rig.start()
    try:
        async with controller_on(rig, folder / "db.sqlite") as controller:
            injection = controller.create_injection(request(2.0, 3.0))
            await controller.start_injection(injection.id)
            await rig.until(lambda: rig.plant.delivered_ml > 0.01)
            stamps: dict[str, float] = {}
            write = controller.pump.transport.write_nowait

            def timed_write(data: bytes) -> None:
                write(data)
                if b"STP" in data and "stp" not in stamps:
                    stamps["stp"] = time.perf_counter()

            controller.pump.transport.write_nowait = timed_write  # type: ignore[method-assign]
            limit_raw = controller.bridge.raw_limit_for(950.0)
            if queued:
                _queue_the_supervisor(controller)

            def first_listener(index: int, t: float, p: float, raw: int) -> None:
                if raw >= limit_raw and "sample" not in stamps:
                    stamps["sample"] = time.perf_counter()

            controller.bridge.listeners.samples.insert(0, first_listener)
            rig.bridge.queue_raw([limit_raw + 1000] * 3)
            await rig.until(lambda: injection.state is State.ALARM and "stp" in stamps, 5)
            return stamps["stp"] - stamps["sample"]
    finally:
        await rig.stop()


def _queue_the_supervisor(controller: Controller) -> None:
    """Baseline: samples go through an asyncio.Queue to a task that runs the supervisor."""
    bridge, supervisor = controller.bridge, controller.supervisor
    queue: asyncio.Queue[tuple[int, float, float, int]] = asyncio.Queue()
    bridge.listeners.samples.remove(supervisor.on_sample)
    bridge.add_sample_listener(lambda *sample: queue.put_nowait(sample))

    async def consume() -> None:
        while True:
            supervisor.on_sample(*await queue.get())

    controller.spawn(consume(), "queue-baseline")


async def main() -> None:
    results: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(RUNS):
        for queued in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                results[queued].append(await one_run(Path(tmp), queued))
        print(".", end="", flush=True)
    print()
    print("anomalous sample at the listeners -> STP handed to the OS (real ptys, rig + controller)")
    print(f"  supervisor on the control path   {summary_us(results[False])}")
    print(f"  baseline: queue hop to a task    {summary_us(results[True])}")


if __name__ == "__main__":
    asyncio.run(main())
