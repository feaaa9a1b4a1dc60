"""Conformance: the independent nesp-lib 2.x client drives the emulator exposed by
``injectctl sim`` through its pty, in basic and in safe mode."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nesp_lib
import pytest

from drivers.ne1000_protocol import encode_basic, encode_safe

# Alone: the pump's safe-mode timeout and elapsed times are measured on the wall clock.
pytestmark = [pytest.mark.conformance, pytest.mark.exclusive]


@pytest.fixture
def sim_pump(tmp_path: Path) -> Iterator[Path]:
    link = tmp_path / "x" / "pump"
    injectctl = Path(sys.executable).parent / "injectctl"  # the installed console script
    proc = subprocess.Popen(
        [str(injectctl), "sim", "--pump-link", str(link)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    try:
        banner = proc.stdout.readline()  # printed once the link exists
        assert str(link) in banner, banner
        yield link
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, rest
        assert not os.path.lexists(link), "sim must remove its links on exit"


def open_pump(link: Path, safe_timeout_s: int) -> tuple[nesp_lib.Port, nesp_lib.Pump]:
    port = nesp_lib.Port(str(link), 19200)
    # nesp-lib opens the port with no timeout; give its reads one so a
    # non-conforming emulator fails this test instead of hanging it.
    port._Port__serial.timeout = 3
    return port, nesp_lib.Pump(port, safe_mode_timeout_s=safe_timeout_s)


def send_raw(port: nesp_lib.Port, command: str, safe: bool) -> bytes:
    """Set a rate in a unit nesp-lib itself never chooses, so its parser reads it."""
    port._transmit(encode_safe(command.encode()) if safe else encode_basic(command))
    serial = port._Port__serial
    if safe:
        head = serial.read(2)
        reply = bytes(head + serial.read(head[1] - 1))
    else:
        reply = bytes(serial.read_until(b"\x03"))
    assert reply.endswith(b"\x03") and b"00S" in reply, reply
    return reply


@pytest.mark.parametrize("safe_timeout_s", [0, 5], ids=["basic", "safe"])
def test_nesplib_drives_the_emulator(sim_pump: Path, safe_timeout_s: int) -> None:
    port, pump = open_pump(sim_pump, safe_timeout_s)
    try:
        assert pump.model_number == 1000 and pump.firmware_version == (3, 928)
        assert pump.safe_mode_timeout_s == safe_timeout_s
        pump.syringe_diameter_mm = 26.59
        assert pump.syringe_diameter_mm == pytest.approx(26.59)
        for rate in (0.001, 0.5, 20.0):  # nesp-lib picks UH, UM and MH for these
            pump.pumping_rate_ml_per_min = rate
            assert pump.pumping_rate_ml_per_min == pytest.approx(rate, rel=1e-3)
        send_raw(port, "0RAT25.00MM", safe_timeout_s > 0)
        assert pump.pumping_rate_ml_per_min == pytest.approx(25.0)
        pump.syringe_diameter_mm = 12.06
        pump.pumping_rate_ml_per_min = 3.0
        pump.pumping_volume_ml = 0.1
        assert pump.pumping_volume_ml == pytest.approx(0.1)
        pump.pumping_direction = nesp_lib.PumpingDirection.INFUSE
        assert pump.pumping_direction == nesp_lib.PumpingDirection.INFUSE
        pump.volume_infused_clear()
        pump.run(wait_while_running=False)
        assert pump.status == nesp_lib.Status.INFUSING
        assert pump.running
        time.sleep(0.5)  # let the pump infuse for a while: elapsed time is the input here
        partway = pump.volume_infused_ml
        assert 0 < partway < 0.1
        pump.stop(wait_while_running=True)
        assert not pump.running
        stopped_at = pump.volume_infused_ml
        assert stopped_at >= partway
        pump.run(wait_while_running=True)  # resumes from the pause to the target
        assert pump.volume_infused_ml == pytest.approx(0.1, abs=1e-3)
        pump.volume_infused_clear()
        assert pump.volume_infused_ml == 0.0
        assert pump.volume_withdrawn_ml == 0.0
        pump.safe_mode_timeout_s = 0
    finally:
        port.close()


def test_emulator_timeout_stops_pump_for_nesplib(sim_pump: Path) -> None:
    """The pump's own watchdog, seen from an independent client."""
    port, pump = open_pump(sim_pump, 0)
    try:
        pump.pumping_volume_ml = 0.5
        pump.safe_mode_timeout_s = 1
        # nesp-lib's heartbeat thread keeps the pump alive: still infusing after 2 s.
        pump.run(wait_while_running=False)
        time.sleep(2.0)  # twice the pump timeout must pass without A?T
        assert pump.status == nesp_lib.Status.INFUSING
        pump.stop()
        pump.safe_mode_timeout_s = 0
    finally:
        port.close()
