"""Telemetry fan-out: ``injectctl serve --sim`` with 0 and 20 WebSocket clients.

The server runs in its own process (1000 Hz sampling from the simulator); this process
holds the clients. Reported: the server's CPU (from /proc, user + system) over the
window, and per batch the latency from its newest sample's host timestamp to a client
receiving it (CLOCK_MONOTONIC is shared between processes), which includes the up to
40 ms a sample waits for its batch. Baseline in the same run: the server with no client.

Run: ``make bench`` (or ``.venv/bin/python -m bench.telemetry_bench``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import websockets

WINDOW_S = 10.0
PORT = 8791


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def client(url: str, latencies: list[float], stop: asyncio.Event) -> None:
    async with websockets.connect(url) as socket:
        while not stop.is_set():
            message = json.loads(await socket.recv())
            if message["type"] == "samples":
                newest = message["t0"] + message["dt"] * (len(message["p"]) - 1)
                latencies.append(time.monotonic() - newest)


async def measure(pid: int, clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    stop = asyncio.Event()
    url = f"ws://127.0.0.1:{PORT}/api/v1/telemetry"
    tasks = [asyncio.create_task(client(url, latencies, stop)) for _ in range(clients)]
    await asyncio.sleep(1.0)  # connections settle before the window opens
    latencies.clear()
    before = cpu_s(pid)
    await asyncio.sleep(WINDOW_S)  # the measurement window
    used = cpu_s(pid) - before
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return used / WINDOW_S, latencies


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "controller.cli",
                "serve",
                "--sim",
                "--port",
                str(PORT),
                "--db",
                str(Path(tmp) / "db.sqlite"),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "INJECTCTL_TOKEN": "bench"},
        )
        assert proc.stdout is not None and "dashboard at" in proc.stdout.readline()
        try:
            print(f"serve --sim at 1000 Hz, {WINDOW_S:.0f} s windows")
            for clients in (0, 20):
                cpu, lat = asyncio.run(measure(proc.pid, clients))
                line = f"  {clients:2d} clients: server CPU {cpu * 100:5.1f} % of a core"
                if lat:
                    arr = np.array(lat) * 1e3
                    line += (
                        f"; sample -> client median {np.median(arr):5.1f} ms, "
                        f"p95 {np.percentile(arr, 95):5.1f} ms, {len(lat)} batches received"
                    )
                print(line)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
