"""Calibration maths and storage, and the ``injectctl transducer`` workflow end to end."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from controller.calibration.transducer import (
    CalibrationError,
    CalibrationPoint,
    CalibrationStore,
    NotStill,
    fit_record,
    nominal_record,
    still_reading,
    zero_record,
)
from firmware_bridge.messages import Hello
from simulator.bridge_emulator import BridgeEmulator
from simulator.transducer_model import NOMINAL_COUNTS_PER_MMHG
from tests.support.cli import INJECTCTL, run_cli

GAIN = 5400.0
HELLO = Hello(1, 1, 0, 0x1B2D0001, 24, 2500, 0, 5369.0, 1000)
rng = np.random.default_rng(7)


def _point(ref: float, raw: float) -> CalibrationPoint:
    return CalibrationPoint(reference_mmhg=ref, raw_mean=raw, raw_sd=100.0, n=1000)


def test_multipoint_fit_recovers_gain_offset_and_reports_nonlinearity() -> None:
    refs = [0.0, 100.0, 200.0, 300.0]
    bow = [0.0, 0.3, 0.3, 0.0]  # mmHg of curvature in the middle of the span
    points = [_point(r, 1000 + GAIN * (r + b)) for r, b in zip(refs, bow, strict=True)]
    record = fit_record(1, points, nominal_gain=5369.0)
    assert record.method == "multipoint"
    assert record.gain_counts_per_mmhg == pytest.approx(GAIN, rel=1e-3)
    assert record.nonlinearity_pct_span == pytest.approx(0.05, abs=0.01)
    assert max(abs(r) for r in record.residuals_mmhg) == pytest.approx(0.15, abs=0.01)
    span = fit_record(1, points[::3], nominal_gain=5369.0)
    assert span.method == "span" and span.nonlinearity_pct_span == 0.0


@pytest.mark.parametrize(
    ("points", "why"),
    [
        ([_point(0, 0)], "at least two"),
        ([_point(0, 0), _point(20, 20 * GAIN)], "span 20 mmHg"),
        ([_point(0, 0), _point(100, 100 * GAIN / 1.36)], "units"),  # cmH2O typed as mmHg
    ],
)
def test_fit_refuses_what_cannot_be_a_calibration(points: list[CalibrationPoint], why: str) -> None:
    with pytest.raises(CalibrationError, match=why):
        fit_record(1, points, nominal_gain=5369.0)


def test_still_reading_refuses_noise_and_drift() -> None:
    still = 5000 + rng.normal(0, 0.1 * GAIN, 1000)
    assert still_reading(still, GAIN).sd_mmhg == pytest.approx(0.1, rel=0.1)
    noisy = still_reading(5000 + rng.normal(0, 1.5 * GAIN, 1000), GAIN)  # 1.5 mmHg rms
    assert noisy.raw_mean / GAIN == pytest.approx(5000 / GAIN, abs=0.2)  # mean to 0.05
    with pytest.raises(NotStill, match=r"uncertain to .* take more samples"):
        still_reading(5000 + rng.normal(0, 5.0 * GAIN, 1000), GAIN)
    with pytest.raises(NotStill, match="beyond any working transducer"):
        still_reading(5000 + rng.normal(0, 20.0 * GAIN, 1000), GAIN)
    with pytest.raises(NotStill, match="drifted"):
        still_reading(still + np.linspace(0, 0.8 * GAIN, 1000), GAIN)


def test_zero_keeps_the_gain_and_refuses_a_closed_line() -> None:
    base = fit_record(1, [_point(0, 100), _point(200, 100 + 200 * GAIN)], 5369.0)
    zeroed = zero_record(still_reading(3000 + rng.normal(0, 100, 500), GAIN), base)
    assert zeroed.gain_counts_per_mmhg == base.gain_counts_per_mmhg
    assert zeroed.zero_counts == pytest.approx(3000, abs=20)
    with pytest.raises(CalibrationError, match="open to air"):
        zero_record(still_reading(np.full(500, 100 + 80 * GAIN), GAIN), base)
    with pytest.raises(CalibrationError, match="open to air"):
        zero_record(still_reading(np.full(500, 60 * 5369.0), 5369.0), nominal_record(HELLO))


def test_store_keeps_every_record_and_the_newest_is_in_force(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    first = nominal_record(HELLO)
    later = first.model_copy(
        update={"created_utc": first.created_utc + timedelta(days=1), "zero_counts": 42.0}
    )
    store.save(later)
    store.save(first)
    store.save(first)  # same second, same method: a second file, not an overwrite
    assert len(store.history(HELLO.device_id)) == 3
    latest = store.latest(HELLO.device_id)
    assert latest is not None and latest.zero_counts == 42.0
    assert store.latest(0xDEAD) is None


class Session:
    """An interactive ``injectctl transducer`` process whose prompts the test answers."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.output = ""

    async def expect(self, text: str, timeout_s: float = 20.0) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout_s):
            while text not in self.output:
                chunk = await self.proc.stdout.read(4096)
                assert chunk, f"process ended before '{text}':\n{self.output}"
                self.output += chunk.decode()

    async def answer(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.output = ""  # what was seen is answered; wait for what comes next
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()


async def test_calibrate_zero_and_monitor_from_the_cli(
    tmp_path: Path, bridge_emulator: BridgeEmulator
) -> None:
    cal_dir = str(tmp_path / "cal")
    common = ["--port", bridge_emulator.path, "--cal-dir", cal_dir, "--samples", "300"]
    proc = await asyncio.create_subprocess_exec(
        INJECTCTL,
        "transducer",
        "calibrate",
        *common,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    session = Session(proc)
    await session.expect("using HELLO's nominal gain (uncalibrated)")
    for reference in (0.0, 100.0, 200.0, 300.0):
        await session.expect("reference pressure in mmHg")
        bridge_emulator.set_pressure(reference)
        await session.answer(f"{reference}")
    await session.expect("reference pressure in mmHg")
    await session.answer("")
    await session.expect("Save this calibration?")
    report = session.output
    await session.answer("y")
    assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert "multipoint calibration from 4 points" in report and "non-linearity" in report

    store = CalibrationStore(Path(cal_dir))
    record = store.latest(bridge_emulator.device_id)
    assert record is not None and record.method == "multipoint"
    true_gain = NOMINAL_COUNTS_PER_MMHG * (1 + bridge_emulator.transducer.sensitivity_error)
    assert record.gain_counts_per_mmhg == pytest.approx(true_gain, rel=2e-3)
    assert record.zero_counts / true_gain == pytest.approx(6.0, abs=0.1)

    bridge_emulator.transducer.zero_offset_mmhg = 9.0  # the zero wandered since the bench
    bridge_emulator.set_pressure(0.0)
    code, out, err = await run_cli("transducer", "zero", "--yes", *common)
    assert code == 0, err
    assert "multipoint of" in out and "saved" in out
    zeroed = store.latest(bridge_emulator.device_id)
    assert zeroed is not None and zeroed.gain_counts_per_mmhg == record.gain_counts_per_mmhg
    assert zeroed.zero_counts / true_gain == pytest.approx(9.0, abs=0.1)

    bridge_emulator.set_pressure(120.0)
    code, out, err = await run_cli("transducer", "monitor", "--duration-s", "1.2", *common)
    assert code == 0, err
    readings = [float(line.split()[0]) for line in out.splitlines() if line.endswith("STREAMING")]
    assert readings and readings[-1] == pytest.approx(120.0, abs=1.0)


async def test_zero_is_refused_while_the_line_is_pressurised(
    tmp_path: Path, bridge_emulator: BridgeEmulator
) -> None:
    bridge_emulator.set_pressure(80.0)
    code, _, err = await run_cli(
        "transducer",
        "zero",
        "--yes",
        "--port",
        bridge_emulator.path,
        "--cal-dir",
        str(tmp_path),
        "--samples",
        "200",
    )
    assert code == 1 and "open to air" in err and err.count("\n") == 1


async def test_verify_from_the_cli_fails_uncalibrated_and_writes_a_certificate(
    tmp_path: Path, bridge_emulator: BridgeEmulator
) -> None:
    """The emulated transducer is 6 mmHg off zero: with HELLO's nominal scale the check
    fails (exit 3) and the certificate says so."""
    cal_dir = tmp_path / "cal"
    proc = await asyncio.create_subprocess_exec(
        INJECTCTL,
        "transducer",
        "verify",
        "--port",
        bridge_emulator.path,
        "--cal-dir",
        str(cal_dir),
        "--samples",
        "300",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    session = Session(proc)
    for reference in (0.0, 200.0):
        await session.expect("reference pressure in mmHg")
        bridge_emulator.set_pressure(reference)
        await session.answer(f"{reference}")
    await session.expect("reference pressure in mmHg")
    await session.answer("")
    await session.expect("FAILED; certificate")
    assert await asyncio.wait_for(proc.wait(), 20) == 3
    pages = list(cal_dir.glob("*/verifications/*.html"))
    assert len(pages) == 1 and "FAILED" in pages[0].read_text()
