"""The HTTP API and telemetry WebSocket, served by a real uvicorn on the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics

import pytest
import websockets

from controller.injection import State
from dashboard.telemetry.bus import CLIENT_BATCHES, TelemetryBus
from tests.support.served_app import (
    AUTH,
    BODY,
    Served,
    line_settled,
    served,
    simulator,
    until,
)

__all__ = ["served"]  # the fixture


async def test_reads_are_open_and_control_needs_the_token(served: Served) -> None:
    http = served.http
    health = (await http.get("/api/v1/health")).json()
    assert (
        health["status"] == "ok"
        and health["pump"]["connected"]
        and health["transducer"]["connected"]
    )
    state = (await http.get("/api/v1/state")).json()
    assert set(state) == {
        "state",
        "pressure_mmhg",
        "infused_ml",
        "rate_ml_min",
        "alarms",
        "injection_id",
        "line_settled",
        "pre_alarms",  # issue 21 (and each alarm's "priority")
    }
    for path in (
        "/api/v1/transducer/zero",
        "/api/v1/injections",
        "/api/v1/alarms/acknowledge",
        "/api/v1/injections/x/start",
        "/api/v1/injections/x/stop",
    ):
        assert (await http.post(path, json=BODY)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await http.post(path, json=BODY, headers=wrong)).status_code == 401


async def test_bad_input_is_422_naming_field_and_limit(served: Served) -> None:
    http = served.http
    too_much = await http.post("/api/v1/injections", json={**BODY, "volume_ml": 20}, headers=AUTH)
    assert too_much.status_code == 422 and "volume: 20 mL is outside 0.5-10 mL" in too_much.text
    missing = await http.post("/api/v1/injections", json={"volume_ml": 1}, headers=AUTH)
    assert missing.status_code == 422 and "rate_ml_min" in missing.text
    negative = await http.post("/api/v1/injections", json={**BODY, "rate_ml_min": -1}, headers=AUTH)
    assert negative.status_code == 422 and "greater than 0" in negative.text
    assert (await http.get("/api/v1/injections/nope")).status_code == 404


async def test_an_injection_through_the_api(served: Served) -> None:
    http, controller = served.http, served.runtime.controller
    assert controller is not None
    created = await http.post("/api/v1/injections", json=BODY, headers=AUTH)
    assert created.status_code == 201
    injection_id = created.json()["id"]
    refused = await http.post(f"/api/v1/injections/{injection_id}/start", headers=AUTH)
    assert refused.status_code == 409 and "not zeroed" in refused.json()["detail"]
    assert (await http.post("/api/v1/transducer/zero", headers=AUTH)).status_code == 200
    await line_settled(served)
    started = await http.post(f"/api/v1/injections/{injection_id}/start", headers=AUTH)
    assert started.status_code == 200 and started.json()["state"] == "running"
    busy = await http.post("/api/v1/transducer/zero", headers=AUTH)
    assert busy.status_code == 409
    await until(served.runtime, lambda: controller.injections[injection_id].delivered_ml > 0.1)
    assert (await http.post(f"/api/v1/injections/{injection_id}/pause", headers=AUTH)).json()[
        "state"
    ] == "paused"
    assert (await http.post(f"/api/v1/injections/{injection_id}/resume", headers=AUTH)).json()[
        "state"
    ] == "running"
    await until(
        served.runtime, lambda: controller.injections[injection_id].state is State.COMPLETED, 30
    )
    view = (await http.get(f"/api/v1/injections/{injection_id}")).json()
    assert view["state"] == "completed" and view["delivered_ml"] == pytest.approx(0.5, abs=0.01)
    assert view["alarm"] is None and view["events"][0]["kind"] == "started"
    again = await http.post(f"/api/v1/injections/{injection_id}/stop", headers=AUTH)
    assert again.status_code == 409
    listing = (await http.get("/api/v1/injections")).json()
    assert [i["id"] for i in listing] == [injection_id]
    await controller.recorder.flush_trace()
    trace = (await http.get(f"/api/v1/injections/{injection_id}/trace?max_points=500")).json()
    assert 100 < len(trace["pressure_mmhg"]) <= 500 and max(trace["pressure_mmhg"]) > 20
    events = (await http.get("/api/v1/events?limit=50")).json()
    assert {"started", "completed", "transducer_zeroed"} <= {e["kind"] for e in events}
    report = (await http.get("/api/v1/report")).json()
    assert report["injections"][0]["state"] == "completed"
    csv_text = (await http.get("/api/v1/report?format=csv")).text
    assert csv_text.startswith("id,target") and injection_id in csv_text
    page = await http.get("/api/v1/report?format=html")
    assert page.headers["content-type"].startswith("text/html") and "<table>" in page.text
    assert (await http.get("/api/v1/report?format=pdf")).status_code == 422
    proposal = await http.get("/api/v1/targets/liver segment VI/next-sector?sectors=4")
    assert proposal.json() == {"cycle": 1, "sector": 1}  # this injection named no sector
    assert (await http.get("/api/v1/targets/x/next-sector?sectors=1")).status_code == 422


async def test_an_alarm_through_the_api_and_its_acknowledgement(served: Served) -> None:
    http, sim = served.http, simulator(served.runtime)
    assert sim is not None
    await http.post("/api/v1/transducer/zero", headers=AUTH)
    injection_id = (
        await http.post(
            "/api/v1/injections", json={**BODY, "volume_ml": 2.0, "rate_ml_min": 3.0}, headers=AUTH
        )
    ).json()["id"]
    await line_settled(served)
    started = await http.post(f"/api/v1/injections/{injection_id}/start", headers=AUTH)
    assert started.status_code == 200, (await http.get("/api/v1/state")).text
    controller = served.runtime.controller
    assert controller is not None
    await until(served.runtime, lambda: controller.supervisor.line.state == "monitoring", 20)
    await sim.inject("occlusion", {})
    await until(served.runtime, lambda: controller.alarm is not None, 5)
    view = (await http.get(f"/api/v1/injections/{injection_id}")).json()
    assert view["state"] == "alarm" and view["alarm"]["kind"] == "occlusion" and view["alarm"]["at"]
    state = (await http.get("/api/v1/state")).json()
    assert state["alarms"][0]["kind"] == "occlusion"
    await until(
        served.runtime,
        lambda: any(e["kind"] == "alarm" for e in controller.injections[injection_id].events),
        10,
    )
    await until(served.runtime, lambda: not controller.stop_path.busy, 10)  # relief done
    acknowledged = await http.post("/api/v1/alarms/acknowledge", headers=AUTH)
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged"] == "occlusion"
    assert (await http.get("/api/v1/state")).json()["alarms"] == []


async def test_telemetry_fans_out_and_checks_origin(served: Served) -> None:
    url = served.base.replace("http", "ws") + "/api/v1/telemetry"
    async with (
        websockets.connect(url) as fast,
        websockets.connect(url, close_timeout=0.5) as stalled,
    ):
        first = json.loads(await fast.recv())
        assert first["type"] == "state"
        sizes: list[int] = []
        async with asyncio.timeout(5):
            while len(sizes) < 25:  # one second at 25 batches a second
                message = json.loads(await fast.recv())
                if message["type"] == "samples":
                    sizes.append(len(message["p"]))
        # 40 ms batches of 1 kHz samples; one late loop timer makes one batch longer
        assert 30 <= statistics.median(sizes) <= 50, sizes
        assert max(sizes) <= 250, sizes
        assert stalled is not None  # connected the whole time, never read from
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(url, origin="http://evil.example") as hostile:  # type: ignore[arg-type]
            await hostile.recv()


async def test_a_slow_client_loses_old_batches_never_events() -> None:
    bus = TelemetryBus()
    slow, fast = bus.subscribe(), bus.subscribe()
    bus.add_sample(0, 0.0, 10.0, 1)
    bus.publish_event("state", {"state": "running"})
    for k in range(CLIENT_BATCHES * 2):
        bus.add_sample(k, k * 0.001, 10.0, 1)
        bus._flush()
        fast.next_messages()
    bus.stop()
    messages = slow.next_messages()
    assert json.loads(messages[0]) == {"type": "state", "state": "running"}
    assert len(messages) == 1 + CLIENT_BATCHES and slow.dropped_batches > 0
    assert fast.dropped_batches == 0
    with contextlib.suppress(Exception):
        bus.unsubscribe(slow)
