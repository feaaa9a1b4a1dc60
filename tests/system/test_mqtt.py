"""The MQTT publisher against a real Mosquitto: topics, retained state and status, Last
Will, QoS 1 events in order across a broker restart, a stalled broker, remote stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import websockets
from pydantic import SecretStr

from bench.mosquitto import Broker, broker
from controller.config import ControllerConfig, MqttConfig
from dashboard.runtime import Runtime, ServeSettings
from tests.support.served_app import (
    AUTH,
    TOKEN,
    Served,
    serving,
    sim_settings,
    simulator,
    spawn_serve,
    start_running,
    until,
)
from tests.support.timing import SHARED_STALENESS_S

__all__ = ["broker"]  # the fixture
DEVICE = "room-1"
STOP_TOKEN = "stop-only-0123456789"
PREFIX = f"injectctl/{DEVICE}"


def settings_for(tmp_path: Path, broker: Broker, **mqtt: Any) -> ServeSettings:
    config = ControllerConfig(mqtt=MqttConfig(url=broker.url, device_id=DEVICE, **mqtt))
    return sim_settings(tmp_path / "db.sqlite", config=config, staleness_s=SHARED_STALENESS_S)


class Listener:
    """A subscriber to ``injectctl/<device>/#`` that keeps what it receives, per topic."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.received: list[tuple[str, Any, bool]] = []
        self.arrived = asyncio.Event()

    async def run(self) -> None:
        async for message in self.client.messages:
            payload = message.payload
            assert isinstance(payload, bytes)
            if str(message.topic).startswith(f"{PREFIX}/cmd/"):
                continue  # what the test itself sends
            text = payload.decode()
            body = text if text in ("online", "offline") else json.loads(text)
            self.received.append((str(message.topic), body, message.retain))
            self.arrived.set()

    def on(self, leaf: str) -> list[Any]:
        return [body for topic, body, _ in self.received if topic == f"{PREFIX}/{leaf}"]

    async def wait_for(
        self, leaf: str, match: Any = lambda body: True, timeout_s: float = 10
    ) -> Any:
        async with asyncio.timeout(timeout_s):
            while True:
                for body in self.on(leaf):
                    if match(body):
                        return body
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def listener(broker: Broker) -> AsyncIterator[Listener]:
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="test-listener") as client:
        await client.subscribe(f"{PREFIX}/#", qos=1)
        listening = Listener(client)
        task = asyncio.create_task(listening.run())
        try:
            yield listening
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def _start_then_occlude(served: Served) -> str:
    runtime = served.runtime
    controller = runtime.controller
    assert controller is not None
    injection_id = await start_running(served, volume_ml=2.0, rate_ml_min=3.0)
    await until(runtime, lambda: controller.supervisor.line.state == "monitoring", 20)
    await simulator(runtime).inject("occlusion", {})
    return injection_id


async def test_topics_payloads_and_retained_messages(
    tmp_path: Path, broker: Broker, listener: Listener
) -> None:
    async with serving(settings_for(tmp_path, broker)) as served:
        assert await listener.wait_for("status", lambda b: b == "online")
        state = await listener.wait_for("state")
        assert state["schema"] == 1 and state["state"] == "idle" and "t_mono_s" in state
        batches = [
            await listener.wait_for("pressure", lambda b, k=k: b["seq"] == k) for k in (1, 2, 3)
        ]
        assert all(len(b["p_mmhg"]) > 10 and b["dt_s"] > 0 for b in batches)
        injection_id = await _start_then_occlude(served)
        raised = await listener.wait_for("alarms", lambda b: b["active"])
        assert (
            raised["active"][0]["kind"] == "occlusion"
            and raised["active"][0]["injection_id"] == injection_id
        )
        events = await listener.wait_for("events", lambda b: b["kind"] == "alarm")
        kinds = [e["kind"] for e in listener.on("events")]
        assert kinds.index("transducer_zeroed") < kinds.index("alarm")
        seqs = [e["seq"] for e in listener.on("events")]
        assert seqs == list(range(1, len(seqs) + 1)) and events["injection_id"] == injection_id
        assert (await served.http.post("/api/v1/alarms/acknowledge", headers=AUTH)).is_success
        await listener.wait_for("alarms", lambda b: b["active"] == [] and "acknowledged" in b)
        health = (await served.http.get("/api/v1/health")).json()["mqtt"]
        assert health["connected"] and health["published"] > 10 and health["dropped_events"] == 0
    await listener.wait_for("status", lambda b: b == "offline")  # said on clean shutdown
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="late") as late:
        await late.subscribe(f"{PREFIX}/#")
        retained: dict[str, Any] = {}
        async with asyncio.timeout(5):
            async for message in late.messages:
                assert message.retain
                retained[str(message.topic)] = message.payload
                if {f"{PREFIX}/status", f"{PREFIX}/state", f"{PREFIX}/alarms"} <= set(retained):
                    break
    assert retained[f"{PREFIX}/status"] == b"offline"
    assert json.loads(retained[f"{PREFIX}/alarms"])["active"] == []


async def test_events_wait_out_a_broker_restart_and_arrive_in_order(
    tmp_path: Path, broker: Broker
) -> None:
    async with serving(settings_for(tmp_path, broker)) as served:
        publisher = served.runtime.mqtt
        assert publisher is not None
        await until(served.runtime, lambda: publisher.stats.connected)
        await broker.stop()
        await until(served.runtime, lambda: not publisher.stats.connected)
        for _ in range(3):  # recorded while the broker is down
            assert (await served.http.post("/api/v1/transducer/zero", headers=AUTH)).is_success
        await broker.start()
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="after") as client:
            await client.subscribe(f"{PREFIX}/events", qos=1)
            zeroed: list[dict[str, Any]] = []
            async with asyncio.timeout(20):  # reconnect with backoff, then the backlog
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    body = json.loads(message.payload)
                    if body["kind"] == "transducer_zeroed":
                        zeroed.append(body)
                    if len(zeroed) == 3:
                        break
        assert [e["t_mono_s"] for e in zeroed] == sorted(e["t_mono_s"] for e in zeroed)
        assert [e["seq"] for e in zeroed] == sorted(e["seq"] for e in zeroed)
        assert publisher.stats.connects >= 2


# Alone: its subject is that the loop keeps up (no stale sample) while the broker is stalled.
# In session 34's fresh clone, beside another real-time test, its injection ended before it
# levelled in "pump stopped by itself (STOPPED)": no pump alarm, so its external stop input,
# the bridge's interlock; no verdict and no over-pressure before, so most likely the
# emulated bridge's 250 ms host watchdog. That emulator runs in the test's own process: a
# stall of the process is replayed by its catch-up as host silence before the host's ping
# can be read (tried: a 0.26 s time.sleep mid-injection latches "bridge interlock tripped:
# WATCHDOG", 0.22 s nothing). Inferred, not seen: the timed-out wait now prints the
# bridge's flags (WATCHDOG_EXPIRED) to tell.
@pytest.mark.exclusive
async def test_a_broker_that_stops_reading_never_delays_a_stop(
    tmp_path: Path, broker: Broker
) -> None:
    async with serving(settings_for(tmp_path, broker)) as served:
        publisher, controller = served.runtime.mqtt, served.runtime.controller
        assert publisher is not None and controller is not None
        await until(served.runtime, lambda: publisher.stats.connected)
        broker.pause()
        try:
            injection_id = await _start_then_occlude(served)
            await until(served.runtime, lambda: controller.alarm is not None, 5)
            assert controller.alarm is not None and controller.alarm.kind == "occlusion"
            bridge = served.runtime.bridge
            assert bridge is not None and bridge.stats.stale_events == 0  # the loop kept up
            await until(served.runtime, lambda: publisher.stats.dropped_batches > 0, 15)
            state = (await served.http.get(f"/api/v1/injections/{injection_id}")).json()
            assert state["state"] == "alarm"
        finally:
            broker.resume()


async def test_remote_stop_needs_its_own_token_and_a_live_message(
    tmp_path: Path, broker: Broker, listener: Listener
) -> None:
    stop = {"remote_stop": True, "stop_token": STOP_TOKEN, "password": "broker-secret"}
    live_stop = json.dumps({"token": STOP_TOKEN})
    # left on the broker by someone long ago: delivered, flagged retained, at every connect
    await listener.client.publish(f"{PREFIX}/cmd/stop", live_stop, qos=1, retain=True)
    async with serving(settings_for(tmp_path, broker, **stop)) as served:
        publisher, controller = served.runtime.mqtt, served.runtime.controller
        assert publisher is not None and controller is not None
        await until(served.runtime, lambda: publisher.stats.remote_stops_refused == 1)
        await listener.client.publish(f"{PREFIX}/cmd/stop", b"", qos=1, retain=True)  # clear
        await until(served.runtime, lambda: publisher.stats.remote_stops_refused == 2)  # empty
        injection_id = await start_running(served, rate_ml_min=1.0)
        control = json.dumps({"token": TOKEN}).encode()  # the HTTP token stops nothing
        for wrong in (b'{"token": "guess"}', b"not json", control):
            await listener.client.publish(f"{PREFIX}/cmd/stop", wrong, qos=1)
        await until(served.runtime, lambda: publisher.stats.remote_stops_refused == 5)
        assert controller.injections[injection_id].state.value == "running"
        await listener.client.publish(f"{PREFIX}/cmd/stop", live_stop, qos=1)
        await until(
            served.runtime, lambda: controller.injections[injection_id].state.value == "stopped"
        )
        event = await listener.wait_for("events", lambda b: b["kind"] == "remote_stop")
        assert injection_id in event["outcome"]
        assert STOP_TOKEN not in json.dumps(listener.received)  # never echoed
        everything = (await served.http.get("/api/v1/events", headers=AUTH)).json()
        refusals = [
            e["why"]
            for e in everything
            if e["kind"] == "remote_stop_refused" and e["injection_id"] == injection_id
        ]  # in the record, against the injection they were aimed at
        assert refusals == ["missing or wrong stop token"] * 3
        stops = [e for e in everything if e["kind"] == "remote_stop"]
        assert [e["injection_id"] for e in stops] == [injection_id]
        assert any("retained" in e.get("why", "") for e in everything)
        sessions = await _sessions_json(tmp_path / "db.sqlite")
        assert "broker-secret" not in sessions and STOP_TOKEN not in sessions


async def test_remote_stop_outlives_a_pump_that_does_not_answer(
    tmp_path: Path, broker: Broker, listener: Listener
) -> None:
    settings = settings_for(tmp_path, broker, remote_stop=True, stop_token=STOP_TOKEN)
    async with serving(settings) as served:
        publisher, controller = served.runtime.mqtt, served.runtime.controller
        assert publisher is not None and controller is not None
        injection_id = await start_running(served, rate_ml_min=1.0)
        await simulator(served.runtime).inject("pump_silence", {})
        live_stop = json.dumps({"token": STOP_TOKEN})
        await listener.client.publish(f"{PREFIX}/cmd/stop", live_stop, qos=1)
        event = await listener.wait_for("events", lambda b: b["kind"] == "remote_stop", 15)
        assert controller.alarm is not None  # no STP confirmation: the interlock took over
        assert controller.injections[injection_id].state.value == "alarm", event["outcome"]
        await listener.client.publish(f"{PREFIX}/cmd/stop", b"still listening?", qos=1)
        await until(served.runtime, lambda: publisher.stats.remote_stops_refused == 1)
        assert publisher.stats.connected


def test_remote_stop_refuses_to_run_without_a_stop_token_of_its_own(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="stop_token"):
        MqttConfig(url="mqtt://127.0.0.1:1883", remote_stop=True)
    config = ControllerConfig(
        mqtt=MqttConfig(url="mqtt://127.0.0.1:1883", remote_stop=True, stop_token=SecretStr(TOKEN))
    )
    with pytest.raises(ValueError, match="must differ from the control token"):
        Runtime(sim_settings(tmp_path / "db.sqlite", config=config))


async def test_remote_stop_is_off_unless_enabled(
    tmp_path: Path, broker: Broker, listener: Listener
) -> None:
    async with serving(settings_for(tmp_path, broker)) as served:
        publisher, controller = served.runtime.mqtt, served.runtime.controller
        assert publisher is not None and controller is not None
        injection_id = await start_running(served, rate_ml_min=1.0)
        live_stop = json.dumps({"token": STOP_TOKEN})
        await listener.client.publish(f"{PREFIX}/cmd/stop", live_stop, qos=1)
        await listener.wait_for("state", lambda b: b["state"] == "running")
        assert controller.injections[injection_id].state.value == "running"
        assert publisher.stats.remote_stops == 0 and publisher.stats.remote_stops_refused == 0


async def _sessions_json(db: Path) -> str:
    def read() -> str:
        with contextlib.closing(sqlite3.connect(db)) as connection:
            rows = connection.execute("SELECT info_json FROM sessions").fetchall()
        return json.dumps(rows)

    return await asyncio.to_thread(read)


async def test_last_will_says_offline_when_the_controller_is_killed(
    tmp_path: Path, broker: Broker, listener: Listener
) -> None:
    config = str(_config_naming(tmp_path, DEVICE))
    serve = await spawn_serve(
        tmp_path / "db.sqlite",
        "--mqtt",
        broker.url,
        "--config",
        config,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        await listener.wait_for("status", lambda b: b == "online", timeout_s=30)
        listener.received.clear()
        serve.send_signal(signal.SIGKILL)
        # the broker notices within 1.5 keepalives (5 s) and publishes the Will
        await listener.wait_for("status", lambda b: b == "offline", timeout_s=15)
    finally:
        if serve.returncode is None:
            serve.kill()
        await serve.wait()


def _config_naming(folder: Path, device_id: str) -> Path:
    path = folder / "serve.toml"
    path.write_text(f'[mqtt]\ndevice_id = "{device_id}"\n')
    return path


@pytest.mark.chaos
@pytest.mark.exclusive  # the loop's lateness is measured
async def test_hammered_dashboard_and_stalled_broker_leave_the_control_loop_on_time(
    tmp_path: Path, broker: Broker
) -> None:
    """Ten WebSocket clients (half never read) and a broker that stopped reading, during an
    injection that occludes: no sample goes stale, the loop stays on time, and the
    occlusion stops the pump as fast as on a quiet machine (under 1 s at 3 mL/min)."""
    async with serving(settings_for(tmp_path, broker)) as served:
        runtime = served.runtime
        publisher, controller, bridge = runtime.mqtt, runtime.controller, runtime.bridge
        assert publisher is not None and controller is not None and bridge is not None
        await until(runtime, lambda: publisher.stats.connected)
        url = served.base.replace("http", "ws") + "/api/v1/telemetry"
        async with contextlib.AsyncExitStack() as clients:
            sockets = [
                await clients.enter_async_context(websockets.connect(url, close_timeout=0.5))
                for _ in range(10)
            ]
            readers = [asyncio.create_task(_drain(s)) for s in sockets[:5]]
            lateness: list[float] = []
            probe = asyncio.create_task(_probe(lateness))
            broker.pause()
            try:
                injection_id = await _start_then_occlude(served)
                injected_at = time.monotonic()  # just after the occlusion was provoked
                await until(runtime, lambda: controller.alarm is not None, 5)
            finally:
                broker.resume()
                for task in (probe, *readers):
                    task.cancel()
                await asyncio.gather(probe, *readers, return_exceptions=True)
        assert controller.alarm is not None and controller.alarm.kind == "occlusion"
        assert controller.alarm.t_mono_s - injected_at < 1.0
        assert bridge.stats.stale_events == 0
        lateness.sort()
        assert lateness[int(0.99 * len(lateness))] < 0.010, lateness[-10:]
        state = (await served.http.get(f"/api/v1/injections/{injection_id}")).json()
        assert state["state"] == "alarm"


async def _drain(socket: Any) -> None:
    while True:
        await socket.recv()


async def _probe(out: list[float]) -> None:
    """The loop's lateness on a 1 ms timer (measured, not waited on)."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(0.001)
        out.append(time.perf_counter() - asked - 0.001)
