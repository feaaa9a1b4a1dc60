"""MQTT publishing at 1000 Hz sampling, and what it costs the control loop.

The controller runs in this process on the simulator (the simulator in its own process),
twice in the same run: without MQTT (the baseline) and publishing to a real Mosquitto.
Reported for each: the event loop's lateness on a 1 ms timer (median, p99, max: the
control path shares this loop) and the host's receive gap between transducer samples;
with MQTT, the messages and samples per second a separate subscriber (mosquitto_sub)
received.

Run: ``make bench`` (or ``.venv/bin/python -m bench.mqtt_bench``).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.mosquitto import Broker
from controller.cli.sim_cmd import DEFAULT_SCENARIO
from controller.cli.simulation import BuiltInSimulator
from controller.config import ControllerConfig, MqttConfig
from dashboard.runtime import Runtime, ServeSettings

WINDOW_S = 10.0


async def loop_lateness(stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        asked = time.perf_counter()
        await asyncio.sleep(0.001)  # the probe's period; its lateness is the measurement
        out.append(time.perf_counter() - asked - 0.001)


async def run_once(folder: Path, broker: Broker | None) -> dict[str, float]:
    mqtt = MqttConfig(url=broker.url, device_id="bench") if broker else MqttConfig()
    settings = ServeSettings(
        simulation=BuiltInSimulator(DEFAULT_SCENARIO),
        db=folder / f"db-{bool(broker)}.sqlite",
        token="bench",
        config=ControllerConfig(mqtt=mqtt),
    )
    runtime = Runtime(settings)
    await runtime.start()
    subscriber = None
    if broker is not None:
        subscriber = await asyncio.create_subprocess_exec(
            "mosquitto_sub",
            "-p",
            str(broker.port),
            "-t",
            "injectctl/bench/#",
            "-v",
            "-W",
            str(int(WINDOW_S + 1)),  # exits cleanly (output flushed) after the window
            stdout=asyncio.subprocess.PIPE,
        )
    arrivals: list[float] = []
    assert runtime.bridge is not None
    remove = runtime.bridge.add_sample_listener(lambda *_: arrivals.append(time.perf_counter()))
    lateness: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(loop_lateness(stop, lateness))
    await asyncio.sleep(1.0)  # connections settle before the window opens
    lateness.clear()
    arrivals.clear()
    await asyncio.sleep(WINDOW_S)  # the measurement window
    stop.set()
    await probe
    remove()
    result = {
        "lateness_median_ms": float(np.median(lateness)) * 1e3,
        "lateness_p99_ms": float(np.percentile(lateness, 99)) * 1e3,
        "lateness_p999_ms": float(np.percentile(lateness, 99.9)) * 1e3,
        "lateness_max_ms": float(np.max(lateness)) * 1e3,
        "sample_gap_p99_ms": float(np.percentile(np.diff(arrivals), 99)) * 1e3,
        "samples_per_s": len(arrivals) / WINDOW_S,
    }
    if subscriber is not None and runtime.mqtt is not None:
        result["published_per_s"] = runtime.mqtt.stats.published / (WINDOW_S + 1.0)
        lines = (await subscriber.communicate())[0].decode().splitlines()
        pressure = [json.loads(line.split(" ", 1)[1]) for line in lines if "/pressure " in line]
        result["received_msgs_per_s"] = len(lines) / (WINDOW_S + 1.0)
        result["received_samples_per_s"] = sum(len(p["p_mmhg"]) for p in pressure) / (
            WINDOW_S + 1.0
        )
        result["dropped_batches"] = runtime.mqtt.stats.dropped_batches
    await runtime.stop()
    return result


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder)
        await broker.start()
        try:
            baseline = await run_once(folder, None)
            with_mqtt = await run_once(folder, broker)
        finally:
            await broker.stop()
    print(f"MQTT bench, {WINDOW_S:.0f} s windows, 1000 Hz sampling from the simulator")
    print(f"{'':28s}{'no MQTT (baseline)':>20s}{'MQTT to Mosquitto':>20s}")
    for key in baseline:
        print(f"{key:28s}{baseline[key]:20.3f}{with_mqtt[key]:20.3f}")
    for key in (
        "published_per_s",
        "received_msgs_per_s",
        "received_samples_per_s",
        "dropped_batches",
    ):
        print(f"{key:28s}{'':20s}{with_mqtt[key]:20.1f}")


if __name__ == "__main__":
    asyncio.run(main())
