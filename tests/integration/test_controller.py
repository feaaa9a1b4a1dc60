"""The controller end to end: real drivers, real ptys, the simulator's physics, and SQLite."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bench.hil import inject_ports, start_inject
from controller.controller import StartRefused
from controller.injection import State, StateError
from controller.records.queries import read_rows
from controller.safety.verdict import Verdict, VerdictKind
from drivers.ne1000_protocol import PumpAlarm
from drivers.transducer_link import InterlockReleaseRefused
from simulator.rig import SimRig
from tests.support.cli import INJECTCTL
from tests.support.controller_rig import controller_on, request
from tests.support.timing import PRODUCT_STALENESS_S as PRODUCT


async def test_injection_delivers_exactly_the_planned_volume(
    sim_rig: SimRig, tmp_path: Path
) -> None:
    async with controller_on(sim_rig, tmp_path / "db.sqlite") as controller:
        injection = controller.create_injection(request(0.5, 5.0))
        await controller.start_injection(injection.id)
        assert sim_rig.pump.model.safe_mode and sim_rig.bridge.core.flags & 0x80  # both watchdogs
        await sim_rig.until(lambda: injection.state is State.COMPLETED, timeout_s=30)
        assert controller.alarm is None
        assert injection.delivered_ml == pytest.approx(0.5, abs=0.005 + 0.005)
        assert sim_rig.true_delivered_ml() - 0.5 <= 0.005
        # "completed" is recorded once the watchdogs are disarmed (the state moves first)
        await sim_rig.until(lambda: injection.events[-1]["kind"] == "completed")
        assert not sim_rig.pump.model.safe_mode  # disarmed after the run
        await controller.recorder.flush_trace()
        await controller.recorder.sync()
        rows = await controller.recorder.read(
            read_rows, "SELECT state, delivered_ml FROM injections"
        )
        assert [tuple(r) for r in rows] == [("completed", pytest.approx(0.5, abs=0.01))]
        kinds = [e["kind"] for e in injection.events]
        assert kinds[0] == "started" and kinds[-1] == "completed"
        _times, pressure = await controller.recorder.pressure(injection.id)
        assert len(pressure) > 1000 and pressure.max() > 20


async def test_start_is_refused_with_the_reason(sim_rig: SimRig, tmp_path: Path) -> None:
    async with controller_on(sim_rig, tmp_path / "db.sqlite") as controller:
        unchecked = controller.create_injection(request(checklist_confirmed=False))
        with pytest.raises(StartRefused, match="checklist not confirmed"):
            await controller.start_injection(unchecked.id)
        controller.zeroed_at_mono_s = None
        ready = controller.create_injection(request())
        with pytest.raises(StartRefused, match="not zeroed"):
            await controller.start_injection(ready.id)
        with pytest.raises(ValueError, match="volume: 12 mL is outside"):
            controller.create_injection(request(volume_ml=12.0))
        with pytest.raises(ValueError, match="syringe_for_22g"):
            controller.create_injection(request(syringe="bd-luerlok-10ml", volume_ml=1.0))
        assert not sim_rig.pump.model.status.moving


async def test_occlusion_stops_the_pump_and_relieves_the_pressure(
    sim_rig: SimRig, tmp_path: Path
) -> None:
    async with controller_on(sim_rig, tmp_path / "db.sqlite") as controller:
        injection = controller.create_injection(request(2.0, 3.0))
        await controller.start_injection(injection.id)
        await sim_rig.until(lambda: controller.supervisor.line.state == "monitoring", timeout_s=20)
        onset = sim_rig.inject("occlusion")
        await sim_rig.until(lambda: injection.state is State.ALARM, timeout_s=5)
        assert injection.alarm is not None and injection.alarm.kind == "occlusion"
        latency_s = injection.alarm.t_mono_s - (sim_rig.truth.t0_mono_s + onset.t_s)
        assert latency_s < 1.0, (injection.alarm.detail, controller.supervisor.compliance.value)
        # STP and INTERLOCK are on the wire; the emulators act on them as they arrive
        await sim_rig.until(lambda: not sim_rig.pump.model.status.moving, timeout_s=0.05)
        await sim_rig.until(lambda: sim_rig.bridge.interlock, timeout_s=0.05)
        await sim_rig.until(
            lambda: any(e["kind"] == "alarm" for e in injection.events), timeout_s=10
        )
        relief = next(e for e in injection.events if e["kind"] == "pressure_relief")
        # the stored volume withdrawn until the line stood at its rest again, no further
        assert 0 < relief["withdrawn_ul"] <= controller.config.relief_max_ul
        assert relief["pressure_after_mmhg"] < relief["target_mmhg"] + 5.0, relief
        assert sim_rig.bridge.interlock  # re-asserted after the relief
        await controller.recorder.sync()
        rows = await controller.recorder.read(read_rows, "SELECT kind FROM alarms")
        assert [r["kind"] for r in rows] == ["occlusion"]
        other = controller.create_injection(request())
        with pytest.raises(StartRefused, match=r"alarm is latched \(occlusion: .+\); ackn"):
            await controller.start_injection(other.id)
        with pytest.raises(InterlockReleaseRefused):
            sim_rig.bridge.faults.open_sensor()
            await sim_rig.until(lambda: bool(sim_rig.bridge.core.flags & 1))
            await controller.acknowledge()
        sim_rig.bridge.faults.clear()
        cleared_at = sim_rig.plant.t_s
        # the open sensor read full scale, over the armed trip limit: wait out `consecutive`
        await sim_rig.until(lambda: sim_rig.plant.t_s > cleared_at + 0.05)
        assert (await controller.acknowledge()) is not None
        assert controller.alarm is None and not sim_rig.bridge.interlock


async def test_pause_and_resume_still_deliver_the_total(sim_rig: SimRig, tmp_path: Path) -> None:
    async with controller_on(sim_rig, tmp_path / "db.sqlite") as controller:
        injection = controller.create_injection(request(0.6, 5.0))
        await controller.start_injection(injection.id)
        await sim_rig.until(lambda: sim_rig.plant.delivered_ml > 0.2)
        await controller.pause_injection(injection.id)
        assert injection.state is State.PAUSED and 0.2 <= injection.delivered_ml < 0.6
        with pytest.raises(StateError):
            await controller.pause_injection(injection.id)
        await controller.resume_injection(injection.id)
        await sim_rig.until(lambda: injection.state is State.COMPLETED, timeout_s=30)
        assert injection.delivered_ml == pytest.approx(0.6, abs=0.006 + 0.005)
        assert sim_rig.true_delivered_ml() == pytest.approx(0.6, abs=0.011)


async def test_operator_stop(sim_rig: SimRig, tmp_path: Path) -> None:
    async with controller_on(sim_rig, tmp_path / "db.sqlite") as controller:
        injection = controller.create_injection(request(1.0, 5.0))
        await controller.start_injection(injection.id)
        await sim_rig.until(lambda: sim_rig.plant.delivered_ml > 0.1)
        await controller.stop_injection(injection.id)
        assert injection.state is State.STOPPED and not sim_rig.pump.model.status.moving
        assert injection.delivered_ml == pytest.approx(sim_rig.true_delivered_ml(), abs=0.002)


@pytest.mark.exclusive  # the product's 20 ms staleness rule is the subject
@pytest.mark.parametrize(
    ("fault", "params"), [("bridge_silence", {}), ("pump_silence", {"duration_s": 5.0})]
)
async def test_a_device_that_goes_quiet_stops_the_infusion(
    sim_rig: SimRig, tmp_path: Path, fault: str, params: dict[str, float]
) -> None:
    async with controller_on(sim_rig, tmp_path / "db.sqlite", staleness_s=PRODUCT) as controller:
        injection = controller.create_injection(request(2.0, 3.0))
        await controller.start_injection(injection.id)
        await sim_rig.until(lambda: sim_rig.plant.delivered_ml > 0.05)
        onset = sim_rig.inject(fault, **params)
        await sim_rig.until(lambda: injection.state is State.ALARM, timeout_s=5)
        assert injection.alarm is not None and injection.alarm.kind == "link_lost"
        budget = 0.05 if fault == "bridge_silence" else 0.5
        assert injection.alarm.t_mono_s - (sim_rig.truth.t0_mono_s + onset.t_s) < budget
        await sim_rig.until(lambda: not sim_rig.pump.model.status.moving, timeout_s=1)
        sim_rig.bridge.faults.clear()
        sim_rig.pump.faults.clear()


async def test_a_pump_that_goes_quiet_leaves_an_estimated_volume_confirmed_when_it_answers(
    sim_rig: SimRig, tmp_path: Path
) -> None:
    """The pump's count cannot be read after the stop: the record carries the last reading
    plus the rate until the interlock, said to be an estimate, within a few uL of the
    plunger's true travel; once the pump answers, the acknowledgement reads its count and
    the record takes it."""
    async with controller_on(sim_rig, tmp_path / "db.sqlite") as controller:
        injection = controller.create_injection(request(2.0, 3.0))
        await controller.start_injection(injection.id)
        await sim_rig.until(lambda: sim_rig.plant.delivered_ml > 0.05)
        sim_rig.inject("pump_silence", duration_s=60.0)
        await sim_rig.until(lambda: injection.state is State.ALARM, timeout_s=5)
        await sim_rig.until(lambda: not controller.stop_path.busy, timeout_s=15)
        true_ml = sim_rig.true_delivered_ml()
        estimate = injection.delivery_estimate
        assert estimate is not None and estimate["source"].startswith("estimated")
        assert estimate["last_reading_ml"] < true_ml  # the pump ran on after its last reading
        assert abs(injection.delivered_ml - true_ml) < 0.005
        finished = [e for e in injection.events if e["kind"] == "alarm"][-1]
        assert finished["delivered"] == estimate
        sim_rig.pump.faults.clear()
        await controller.acknowledge()
        assert injection.delivery_estimate is None
        confirmed = [e for e in injection.events if e["kind"] == "delivery_confirmed"]
        assert confirmed and confirmed[0]["confirmed"] is True
        assert injection.delivered_ml == pytest.approx(true_ml, abs=2e-4)  # the pump's count
        await controller.recorder.sync()
        rows = await controller.recorder.read(read_rows, "SELECT delivered_ml FROM injections")
        assert rows[0][0] == pytest.approx(injection.delivered_ml, abs=1e-6)


async def test_the_interlock_is_asserted_even_when_the_pumps_port_is_already_closing(
    sim_rig: SimRig, tmp_path: Path
) -> None:
    """A hub unplugged takes both ports: the pump's transport may be closing, its loss not
    yet reported, when the bridge's verdict arrives. STP then fails; the interlock must
    still go out (once, STP raised past the stop path and the interlock never did)."""
    async with controller_on(sim_rig, tmp_path / "db.sqlite") as controller:
        injection = controller.create_injection(request(2.0, 3.0))
        await controller.start_injection(injection.id)
        await sim_rig.until(lambda: sim_rig.plant.delivered_ml > 0.05)
        serial = controller.pump.transport._transport  # the OS handle itself
        assert serial is not None
        serial.close()  # closing now; connection_lost comes a loop turn later
        controller.supervisor.trip(
            Verdict(VerdictKind.LINK_LOST, "transducer: test", time.monotonic())
        )
        assert injection.state is State.ALARM
        await sim_rig.until(lambda: sim_rig.bridge.interlock, timeout_s=1)
        await sim_rig.until(lambda: not sim_rig.pump.model.status.moving, timeout_s=1)


@pytest.mark.exclusive  # `injectctl inject` in its own process, at the 20 ms rule
async def test_kill_9_mid_injection_stops_the_pump_and_leaves_a_complete_record(
    sim_rig: SimRig, tmp_path: Path
) -> None:
    db = tmp_path / "record.sqlite"
    ports = inject_ports(sim_rig, db)
    proc = await start_inject(sim_rig, db)
    await sim_rig.until(lambda: sim_rig.plant.delivered_ml > 0.1)
    proc.kill()  # SIGKILL: no cleanup of any kind
    killed_at = sim_rig.plant.t_s
    await proc.wait()
    await sim_rig.until(lambda: not sim_rig.pump.model.status.moving, timeout_s=2.0)
    stopped_after_s = sim_rig.plant.t_s - killed_at
    assert stopped_after_s < 0.3, "the bridge watchdog (250 ms) must stop the pump"
    assert sim_rig.bridge.interlock
    rows = read_rows(db, "SELECT state FROM injections", ())
    assert [r["state"] for r in rows] == ["running"]  # what the dead process had committed
    delivered_true = sim_rig.true_delivered_ml()
    recover = await asyncio.create_subprocess_exec(
        INJECTCTL,
        "inject",
        *ports,
        "--recover-only",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(recover.communicate(), 30)
    assert recover.returncode == 0 and b"recovered" in out
    [row] = read_rows(db, "SELECT state, delivered_ml FROM injections", ())
    assert row["state"] == "interrupted"
    assert row["delivered_ml"] == pytest.approx(delivered_true, abs=0.002)
    events = [r["kind"] for r in read_rows(db, "SELECT kind FROM events", ())]
    assert "started" in events and "interrupted" in events
    traces = read_rows(db, "SELECT sum(n) AS n FROM pressure", ())
    assert traces[0]["n"] > 500


async def test_a_record_that_cannot_be_written_stops_the_injection(
    sim_rig: SimRig, tmp_path: Path
) -> None:
    """Disk full mid-injection (SQLite's own SQLITE_FULL, by capping the file at its current
    size): the pump stops, the interlock holds, the failure is reported, no new start."""
    async with controller_on(sim_rig, tmp_path / "db.sqlite") as controller:
        injection = controller.create_injection(request(volume_ml=2.0, rate_ml_min=2.0))
        await controller.start_injection(injection.id)
        await sim_rig.until(lambda: sim_rig.plant.delivered_ml > 0.05)
        rows = await controller.recorder.read(read_rows, "PRAGMA page_count")
        await controller.recorder.submit(f"PRAGMA max_page_count = {rows[0][0]}")
        await sim_rig.until(lambda: injection.state is State.INTERRUPTED, 10)
        failure = controller.recorder.failure
        assert failure is not None and "full" in failure
        await sim_rig.until(lambda: any(e["kind"] == "interrupted" for e in injection.events))
        assert not sim_rig.pump.model.status.moving
        assert sim_rig.bridge.interlock
        again = controller.create_injection(request())
        with pytest.raises(StartRefused, match="record cannot be written"):
            await controller.start_injection(again.id)


@pytest.mark.exclusive  # `injectctl inject` in its own process, at the 20 ms rule
async def test_kill_9_with_the_bridge_unplugged_the_pumps_own_safe_mode_stops_it(
    sim_rig: SimRig, tmp_path: Path
) -> None:
    """The second layer: the interlock wire is cut, so only the NE-1000's safe-mode timeout
    (2 s without a valid packet from the host) can stop the pump after the kill."""
    proc = await start_inject(sim_rig, tmp_path / "record.sqlite")
    await sim_rig.until(lambda: sim_rig.plant.delivered_ml > 0.1)
    sim_rig.bridge.on_interlock = None  # the interlock no longer reaches the pump
    proc.kill()
    killed_at = sim_rig.plant.t_s
    await proc.wait()
    await sim_rig.until(lambda: not sim_rig.pump.model.status.moving, timeout_s=4.0)
    stopped_after_s = sim_rig.plant.t_s - killed_at
    assert 1.5 < stopped_after_s < 2.6, stopped_after_s  # the 2 s safe-mode timeout, not sooner
    assert sim_rig.pump.model.alarm is PumpAlarm.SAFE_TIMEOUT  # the pump says why
