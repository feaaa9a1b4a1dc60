"""A device that goes quiet mid-injection: from the fault's onset to the alarm and to the
pump actually stopped (real ptys, rig + controller, real time).

Targets (issue 5): transducer silent -> pump stopped within 50 ms; pump not answering
-> interlock asserted and pump stopped within 0.5 s.

Run: ``make bench`` (or ``.venv/bin/python -m bench.link_loss_bench``).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from bench.hil import bench_request as request
from bench.hil import operated as controller_on
from bench.stats import summary_us
from controller.injection import State
from simulator.rig import SimRig
from simulator.scenario import load_scenario

RUNS = 10


async def one_run(folder: Path, fault: str) -> tuple[float, float]:
    rig = SimRig(load_scenario("normal-liver-saline-1ml"), folder / "pump", folder / "bridge")
    await rig.start()
    try:
        async with controller_on(rig, folder / "db.sqlite") as controller:
            injection = controller.create_injection(request(2.0, 3.0))
            await controller.start_injection(injection.id)
            await rig.until(lambda: rig.plant.delivered_ml > 0.05)
            params = {"duration_s": 5.0} if fault == "pump_silence" else {}
            onset = rig.inject(fault, **params)
            onset_mono = rig.truth.t0_mono_s + onset.t_s
            await rig.until(lambda: injection.state is State.ALARM, 5)
            assert injection.alarm is not None and injection.alarm.kind == "link_lost"
            await rig.until(lambda: not rig.pump.model.status.moving, 5)
            stopped = rig.pump.model.now_s - onset_mono
            rig.bridge.faults.clear()
            rig.pump.faults.clear()
            return injection.alarm.t_mono_s - onset_mono, stopped
    finally:
        await rig.stop()


async def main() -> None:
    print("device silent mid-injection: onset -> alarm, onset -> pump stopped (real time)")
    for fault, label in (("bridge_silence", "transducer silent"), ("pump_silence", "pump silent")):
        alarms, stops = [], []
        for _ in range(RUNS):
            with tempfile.TemporaryDirectory() as tmp:
                alarm, stop = await one_run(Path(tmp), fault)
            alarms.append(alarm)
            stops.append(stop)
        print(f"  {label:18s} alarm        {summary_us(alarms)}")
        print(f"  {label:18s} pump stopped {summary_us(stops)}")


if __name__ == "__main__":
    asyncio.run(main())
