"""``injectctl`` as an operator or engineer runs it."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.calibration.transducer import CalibrationRecord, CalibrationStore
from controller.system import load_config
from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import PumpStatus
from drivers.transducer import TransducerBridge
from simulator.ne1000_emulator import NE1000Emulator
from simulator.rig import SimRig
from tests.support.bridge_helpers import Recorder
from tests.support.cli import INJECTCTL, run_cli
from tests.support.served_app import spawn_serve

# Alone: `injectctl inject` runs in its own process at the product's 20 ms staleness rule.
pytestmark = pytest.mark.exclusive


async def test_pump_status(emulator: NE1000Emulator) -> None:
    code, out, _ = await run_cli("pump", "status", "--port", emulator.path)
    assert code == 0
    assert "NE-1000 firmware 3.928" in out and "12.06 mm" in out and "A?R" in out


async def test_pump_infuse_with_progress(emulator: NE1000Emulator) -> None:
    code, out, err = await run_cli(
        "pump",
        "infuse",
        "--port",
        emulator.path,
        "--syringe",
        "bd-luerlok-5ml",
        "--volume-ml",
        "0.05",
        "--rate-ml-min",
        "3",
    )
    assert code == 0, err
    assert "complete: delivered 0.05 of 0.05 mL" in out
    assert "mL/min" in err and "s left" in err
    assert emulator.model.infused_ml == 0.05
    assert not emulator.model.safe_mode  # left in basic mode


async def test_pump_stop(emulator: NE1000Emulator) -> None:
    emulator.model.alarm = None
    emulator.model.settings.volume_value = 0
    emulator.model.handle("RUN", emulator.model.now_s)
    code, out, _ = await run_cli("pump", "stop", "--port", emulator.path)
    assert code == 0 and "paused" in out
    assert not emulator.model.status.moving


async def test_errors_are_one_line(tmp_path: Path, emulator: NE1000Emulator) -> None:
    code, _, err = await run_cli("pump", "status", "--port", str(tmp_path / "missing"))
    assert code == 2 and err.count("\n") == 1 and "cannot open" in err
    code, _, err = await run_cli(
        "pump",
        "infuse",
        "--port",
        emulator.path,
        "--syringe",
        "nope",
        "--volume-ml",
        "1",
        "--rate-ml-min",
        "1",
    )
    assert code == 2 and "unknown syringe 'nope'" in err
    code, _, err = await run_cli(
        "pump",
        "infuse",
        "--port",
        emulator.path,
        "--diameter-mm",
        "12.06",
        "--volume-ml",
        "1",
        "--rate-ml-min",
        "50",
    )
    assert code == 1 and "plunger-speed range" in err
    assert emulator.model.settings.rate_ml_min != 50


async def test_ports_lists_something_or_says_none() -> None:
    code, out, _ = await run_cli("ports")
    assert code == 0 and out.strip()


async def test_sim_serves_pump_and_bridge_with_the_interlock_wired(tmp_path: Path) -> None:
    pump_link, bridge_link = tmp_path / "pump", tmp_path / "bridge"
    proc = await asyncio.create_subprocess_exec(
        INJECTCTL,
        "sim",
        "--pump-link",
        str(pump_link),
        "--transducer-link",
        str(bridge_link),
        "--pressure-mmhg",
        "50",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            while b"PTB/1 transducer bridge at" not in await proc.stdout.readline():
                pass
        pump = await NE1000.open(str(pump_link))
        bridge = await TransducerBridge.open(str(bridge_link))
        try:
            rec = Recorder(bridge)
            await bridge.start_stream(1000, 1)
            await rec.more_samples(500)
            mean = sum(s[2] for s in rec.samples[-200:]) / 200
            assert mean == pytest.approx((50 + 6) * 1.012, abs=1.0)  # nominal gain, true zero
            await pump.set_diameter_mm(12.06)
            await pump.set_rate_ml_min(1.0)
            await pump.set_volume_ml(1.0)
            await pump.run()
            await bridge.assert_interlock()
            assert await pump.status() is PumpStatus.STOPPED
        finally:
            await bridge.close()
            await pump.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0
    assert not pump_link.exists() and not bridge_link.exists()


async def test_serve_refuses_a_configuration_wider_than_the_clinical_limits(tmp_path: Path) -> None:
    wide = tmp_path / "wide.toml"
    wide.write_text("[limits]\nvolume_max_ml = 50\n")
    code, _, err = await run_cli("serve", "--config", str(wide), "--db", str(tmp_path / "db"))
    assert code == 2 and err.count("\n") == 1
    assert "limits.volume_max_ml: Input should be less than or equal to 10" in err
    narrow = tmp_path / "narrow.toml"
    narrow.write_text("[limits]\nvolume_max_ml = 5\npressure_limit_mmhg = 600\n")
    config = load_config(narrow)
    assert config.limits.volume_max_ml == 5 and config.limits.pressure_limit_mmhg == 600


async def test_inject_runs_on_the_saved_calibration_and_refuses_without_one(
    sim_rig: SimRig, tmp_path: Path
) -> None:
    """Issue 16: ``inject`` once ran on the bridge's nominal gain whatever was saved. Now
    it refuses without a calibration (unless told why), and with one it says which."""
    cal_dir = tmp_path / "calibrations"
    ports = [
        "--pump-port",
        sim_rig.pump_port,
        "--transducer-port",
        sim_rig.bridge_port,
        "--db",
        str(tmp_path / "record.sqlite"),
        "--cal-dir",
        str(cal_dir),
    ]
    run = [
        "inject",
        *ports,
        "--volume-ml",
        "0.5",
        "--rate-ml-min",
        "5",
        "--checklist-confirmed",
        "--assume-zeroed",
        "calibration test",
    ]
    code, out, err = await run_cli(*run, timeout_s=60)
    assert code != 0 and "no saved calibration" in out + err
    assert sim_rig.plant.delivered_ml == 0.0
    core = sim_rig.bridge.core
    saved = CalibrationRecord(
        device_id=core.device_id,
        method="span",
        created_utc=datetime.now(UTC),
        zero_counts=float(core.nominal_zero),
        gain_counts_per_mmhg=core.nominal_gain * 1.01,
    )
    CalibrationStore(cal_dir).save(saved)
    code, out, err = await run_cli(*run, timeout_s=90)
    assert code == 0, out + err
    assert "calibration: span of" in out and "uncalibrated" not in out
    assert sim_rig.true_delivered_ml() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_serve_says_in_one_line_why_it_stopped(tmp_path: Path, stop: signal.Signals) -> None:
    """Issue 17: any exit of ``serve`` prints one line saying why (a signal too)."""
    serve = await spawn_serve(
        tmp_path / "db.sqlite", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert serve.stdout is not None
    async with asyncio.timeout(30):
        first = await serve.stdout.readline()
    assert b"dashboard at" in first
    serve.send_signal(stop)
    out, err = await asyncio.wait_for(serve.communicate(), 30)
    assert serve.returncode == 0, err
    assert out == b"" and err.decode().splitlines() == [
        f"injectctl serve: stopped on {stop.name}; any infusion was stopped first and the "
        "record closed"
    ]
