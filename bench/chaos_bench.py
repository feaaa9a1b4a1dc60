"""Chaos sweep: the controller (``injectctl inject``) killed with SIGKILL mid-injection,
many times, with and without the bridge's interlock reaching the pump.

For each run: time from the kill to the emulated pump stopped (plant time), what the
record holds afterwards (the injection row, its events, its pressure trace) and how much
of the trace the kill cost (samples the bridge sent that were never committed: the
recorder commits the trace every 0.5 s; events and alarms are committed before anything
reports them, so none can be lost). Then the recovery run marks it ``interrupted`` with
the delivered volume from the pump's DIS.

Run: ``make soak`` (or ``.venv/bin/python -m bench.chaos_bench [--runs N]``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
from pathlib import Path

from bench.hil import INJECTCTL, inject_ports, start_inject
from controller.records.queries import read_rows
from simulator.rig import SimRig
from simulator.scenario import load_scenario


async def one_kill(folder: Path, interlock_wired: bool) -> dict[str, float]:
    db = folder / "record.sqlite"
    async with SimRig(load_scenario("normal-liver-saline-1ml"), folder / "p", folder / "b") as rig:
        ports = inject_ports(rig, db)
        proc = await start_inject(rig, db)
        started_at = rig.plant.t_s
        await rig.until(lambda: rig.plant.delivered_ml > 0.1)
        at = rig.plant.t_s + random.uniform(0.0, 0.5)  # anywhere in the trace's commit cycle
        await rig.until(lambda: rig.plant.t_s > at)
        if not interlock_wired:
            rig.bridge.on_interlock = None
        proc.kill()
        killed_at = rig.plant.t_s
        await proc.wait()
        await rig.until(lambda: not rig.pump.model.status.moving, timeout_s=5.0)
        stop_s = rig.plant.t_s - killed_at
        events = read_rows(db, "SELECT kind FROM events", ())
        traced = read_rows(db, "SELECT sum(n) AS n, min(first_index) AS first FROM pressure", ())
        moving_s = killed_at - started_at  # samples streamed into this injection's trace
        recover = await asyncio.create_subprocess_exec(
            INJECTCTL, "inject", *ports, "--recover-only", stdout=asyncio.subprocess.DEVNULL
        )
        await recover.wait()
        [row] = read_rows(db, "SELECT state, delivered_ml FROM injections", ())
        return {
            "stop_s": stop_s,
            "trace_lost_ms": max(0.0, moving_s * 1e3 - float(traced[0]["n"] or 0)),
            "events": float(len(events)),
            "started_recorded": float(any(e["kind"] == "started" for e in events)),
            "interrupted": float(row["state"] == "interrupted"),
            "volume_error_ul": abs(row["delivered_ml"] - rig.true_delivered_ml()) * 1e3,
        }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print(f"kill -9 of the controller mid-injection, {args.runs} runs each")
    for wired, label in (
        (True, "bridge watchdog -> interlock"),
        (False, "bridge unplugged: pump safe mode"),
    ):
        results = []
        for _ in range(args.runs if wired else max(3, args.runs // 2)):
            with tempfile.TemporaryDirectory() as tmp:
                results.append(await one_kill(Path(tmp), wired))
        report(label, results)


def report(label: str, results: list[dict[str, float]]) -> None:
    n = len(results)
    stops = [r["stop_s"] * 1e3 for r in results]
    lost = [r["trace_lost_ms"] for r in results]
    started = sum(r["started_recorded"] for r in results)
    interrupted = sum(r["interrupted"] for r in results)
    volume = max(r["volume_error_ul"] for r in results)
    print(
        f"  {label:34s} n={n:3d}  pump stopped after median "
        f"{statistics.median(stops):6.0f} ms, worst {max(stops):6.0f} ms"
    )
    print(
        f"  {'':34s} started event recorded {started:.0f}/{n}, interrupted after recovery "
        f"{interrupted:.0f}/{n}, volume reconciled within {volume:.1f} uL"
    )
    print(
        f"  {'':34s} trace not yet committed at the kill: median "
        f"{statistics.median(lost):.0f} ms, worst {max(lost):.0f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
