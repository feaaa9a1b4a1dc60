"""Hardware-in-the-loop rigs from the pytest plugin: real drivers against the plant on ptys."""

from __future__ import annotations

import asyncio
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import PumpAlarm, PumpAlarmRaised, PumpStatus
from drivers.transducer import TransducerBridge
from simulator.plant.truth import load_npz
from simulator.rig import SimRig
from simulator.scenario import scenario_library
from tests.support.bridge_helpers import Recorder

INJECTCTL = str(Path(sys.executable).parent / "injectctl")


async def _infuse(pump: NE1000, rate_ml_min: float, volume_ml: float) -> None:
    await pump.set_diameter_mm(12.06)
    await pump.set_rate_ml_min(rate_ml_min)
    await pump.set_volume_ml(volume_ml)
    await pump.run()


async def test_occlusion_shows_on_the_real_drivers_and_in_the_ground_truth(
    sim_rig: SimRig,
) -> None:
    pump = await NE1000.open(sim_rig.pump_port)
    bridge = await TransducerBridge.open(sim_rig.bridge_port)
    try:
        rec = Recorder(bridge)
        await bridge.start_stream(1000, 1)
        await _infuse(pump, 3.0, 2.0)
        await rec.more_samples(1000)
        onset = sim_rig.inject("occlusion")
        assert onset.delivered_ml > 0.03 and sim_rig.onset("occlusion") is onset
        line_at_onset = sim_rig.truth.value_at("p_line_mmhg", onset.t_s)
        await rec.more_samples(1500)
        rise = sim_rig.true_line_pressure_mmhg() - line_at_onset
        assert rise > 50  # 3 mL/min into 1 uL/mmHg: about 50 mmHg/s
        # the bridge measures it: nominal scale sees the true line through the zero and gain errors
        measured = statistics.fmean(s[2] for s in rec.samples[-50:])
        truth = sim_rig.truth.last("p_transducer_mmhg")
        assert measured == pytest.approx((truth + 6.0) * 1.012, abs=3.0)
    finally:
        await bridge.close()
        await pump.close()


async def test_delivered_volume_matches_what_the_pump_reports(sim_rig: SimRig) -> None:
    pump = await NE1000.open(sim_rig.pump_port)
    try:
        await _infuse(pump, 5.0, 0.05)
        await sim_rig.until(lambda: not sim_rig.pump.model.status.moving)
        assert await pump.status() is PumpStatus.STOPPED
        assert sim_rig.true_delivered_ml() == pytest.approx(0.05, abs=1e-9)
        assert (await pump.dispensed_ml())[0] == pytest.approx(0.05)
    finally:
        await pump.close()


async def test_scripted_pump_reset_and_ground_truth_export(
    tmp_path: Path, sim_rig_factory: Callable[..., SimRig]
) -> None:
    base = scenario_library()["normal-liver-saline-1ml"].read_text()
    script = tmp_path / "reset.toml"
    script.write_text(base + "\n[[faults]]\nkind = 'pump_reset'\nat_volume_ml = 0.02\n")
    alarms: list[PumpAlarm] = []
    truth_path = tmp_path / "truth.npz"
    async with sim_rig_factory(script, ground_truth=truth_path) as rig:
        pump = await NE1000.open(rig.pump_port, on_alarm=alarms.append)
        try:
            await _infuse(pump, 5.0, 1.0)
            await rig.wait_for_onset("pump_reset")
            await rig.until(lambda: not rig.pump.model.status.moving)
            with pytest.raises(PumpAlarmRaised, match="RESET"):
                await pump.status()
        finally:
            await pump.close()
    arrays, onsets = load_npz(truth_path)
    assert [o["kind"] for o in onsets] == ["pump_reset"]
    assert onsets[0]["delivered_ml"] == pytest.approx(0.02, abs=0.005)
    assert arrays["delivered_ml"].max() == pytest.approx(onsets[0]["delivered_ml"], abs=0.005)


async def test_sim_cli_runs_a_scenario_and_writes_ground_truth(tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    proc = await asyncio.create_subprocess_exec(
        INJECTCTL,
        "sim",
        "--pump-link",
        str(tmp_path / "pump"),
        "--transducer-link",
        str(tmp_path / "bridge"),
        "--scenario",
        "fault-bridge-silence",
        "--ground-truth",
        str(truth),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[bytes] = []
    async with asyncio.timeout(20):
        while not lines or b"scenario " not in lines[-1]:
            lines.append(await proc.stdout.readline())
    assert b"PTB/1 transducer bridge" in b"".join(lines)
    assert lines[-1].startswith(b"scenario fault-bridge-silence")
    bridge = await TransducerBridge.open(str(tmp_path / "bridge"))
    await bridge.close()
    proc.terminate()
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0 and b"ground truth written" in out
    header = truth.read_text().splitlines()[:2]
    assert header[0].startswith("# onsets []") and "p_line_mmhg" in header[1]


async def test_sim_cli_offline_sweep(tmp_path: Path) -> None:
    truth = tmp_path / "truth.npz"
    proc = await asyncio.create_subprocess_exec(
        INJECTCTL,
        "sim",
        "--scenario",
        "fault-leak-luer",
        "--offline",
        "--ground-truth",
        str(truth),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    assert b"x real time" in out and b"leak at" in out
    arrays, onsets = load_npz(truth)
    assert onsets[0]["kind"] == "leak" and arrays["leak_ml"][-1] > 0.5


async def test_injected_link_faults_reach_the_host(sim_rig: SimRig) -> None:
    bridge = await TransducerBridge.open(sim_rig.bridge_port)
    try:
        rec = Recorder(bridge)
        await bridge.start_stream(1000, 1)
        await rec.more_samples(200)
        sim_rig.inject("bridge_garbage", n_bytes=100)
        await rec.until(lambda: bridge.stats.rx_errors > 0)
        onset = sim_rig.inject("bridge_silence", duration_s=0.5)
        assert onset.applied
        await rec.event("link_lost")
        await rec.event("link_restored", timeout_s=5)
    finally:
        await bridge.close()


async def test_a_wait_that_times_out_says_what_it_waited_for_and_where_the_rig_stood(
    sim_rig: SimRig,
) -> None:
    def broken() -> str:
        raise RuntimeError("no view")

    remove = sim_rig.add_situation(lambda: "watcher: idle")
    remove_broken = sim_rig.add_situation(broken)
    with pytest.raises(TimeoutError) as caught:
        await sim_rig.until(lambda: sim_rig.plant.delivered_ml > 1.0, timeout_s=0.05)
    message = str(caught.value)
    assert "not so within 0.05 s" in message, message
    assert "sim_rig.plant.delivered_ml > 1.0" in message and "test_sim_rig.py:" in message
    assert "rig at t=" in message and "pump still" in message and "faults none" in message
    assert "watcher: idle" in message and "description failed: RuntimeError('no view')" in message
    remove(), remove_broken()
    with pytest.raises(TimeoutError) as again:
        await sim_rig.until(lambda: False, timeout_s=0.01)
    assert "watcher" not in str(again.value) and "lambda: False" in str(again.value)
