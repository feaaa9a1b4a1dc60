"""The NE-1000 emulator: the manual's behaviour, and each injected fault ending in a
clean typed error on the driver side, never a hang or a crash."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from drivers.ne1000 import NE1000
from drivers.ne1000_link import PumpLinkLost, PumpTimeout
from drivers.ne1000_protocol import (
    Direction,
    NotApplicable,
    OutOfRange,
    PumpAlarm,
    PumpAlarmRaised,
    PumpStatus,
    encode_safe,
)
from drivers.transport import open_serial
from simulator.ne1000_emulator import NE1000Emulator
from tests.support.controller_rig import recheck_on

# Alone: the pump's timeouts and delivery times are measured on the wall clock.
pytestmark = pytest.mark.exclusive


async def wait_until(
    emulator: NE1000Emulator, predicate: Callable[[], bool], timeout_s: float = 3.0
) -> None:
    """Wait until ``predicate()`` holds, re-checked on every emulator tick (1 ms): the
    emulator and the driver change state between awaits, and the tick follows both."""
    try:
        await recheck_on(emulator.ticked, predicate, timeout_s)
    except TimeoutError:
        raise AssertionError(f"condition not reached in {timeout_s} s") from None


async def raw_exchange(emulator: NE1000Emulator, data: bytes, end: int = 0x03) -> bytes:
    link = await open_serial(emulator.path)
    try:
        link.write_nowait(data)
        return await link.read_frame(0x02, end, 1.0)
    finally:
        await link.close()


async def test_reset_alarm_pending_after_power_up(emulator: NE1000Emulator) -> None:
    assert await raw_exchange(emulator, b"VER\r") == b"\x0200A?R\x03"
    assert await raw_exchange(emulator, b"VER\r") == b"\x0200SNE1000V3.928\x03"


async def test_basic_mode_strips_spaces_and_case(emulator: NE1000Emulator) -> None:
    await raw_exchange(emulator, b"\r")
    assert await raw_exchange(emulator, b"0 dia 12.06\r") == b"\x0200S\x03"
    assert await raw_exchange(emulator, b"00DIA\r") == b"\x0200S12.06\x03"
    assert await raw_exchange(emulator, b"xyz\r") == b"\x0200S?\x03"


async def test_other_addresses_get_no_answer(emulator: NE1000Emulator) -> None:
    link = await open_serial(emulator.path)
    try:
        link.write_nowait(b"7VER\r")
        with pytest.raises(TimeoutError):
            await link.read_any(0.2)
    finally:
        await link.close()


async def test_bad_crc_answers_com_and_partial_packets_are_discarded(
    emulator: NE1000Emulator,
) -> None:
    await raw_exchange(emulator, b"\r")
    await raw_exchange(emulator, b"SAF9\r")
    bad = bytearray(encode_safe(b"0VER"))
    bad[-2] ^= 1
    assert await raw_exchange(emulator, bytes(bad)) == encode_safe(b"00S?COM")
    link = await open_serial(emulator.path)
    try:
        link.write_nowait(encode_safe(b"0VER")[:4])  # half a packet, then silence
        await asyncio.sleep(0.6)  # the manual's 0.5 s inter-byte timeout must lapse
        link.write_nowait(encode_safe(b"0VER"))
        frame = await link.read_frame(0x02, 0x03, 1.0)
        assert frame == encode_safe(b"00SNE1000V3.928")
    finally:
        await link.close()
    assert emulator.commands_received[-1] == "VER"


async def test_stops_at_target_volume_and_dis_accumulates(pump: NE1000) -> None:
    await pump.set_diameter_mm(12.06)
    await pump.set_rate_ml_min(5.0)
    await pump.set_volume_ml(0.05)
    await pump.clear_dispensed(Direction.INFUSE)
    start = time.monotonic()
    await pump.run()
    first, _ = await pump.dispensed_ml()
    while (await pump.status()).moving:  # noqa: ASYNC110 (polling the pump is the test)
        await asyncio.sleep(0.02)
    elapsed = time.monotonic() - start
    infused, withdrawn = await pump.dispensed_ml()
    assert first < 0.05
    assert infused == pytest.approx(0.05, abs=1e-4) and withdrawn == 0
    assert elapsed == pytest.approx(0.6, abs=0.15)  # 50 uL at 5 mL/min


async def test_rate_limit_from_plunger_speed(emulator: NE1000Emulator, pump: NE1000) -> None:
    await pump.set_diameter_mm(4.78)
    with pytest.raises(OutOfRange):
        await pump._command("RAT5.000MM", retry=False)
    assert emulator.model.settings.rate_value != 5.0


async def test_rate_unit_change_refused_while_running(pump: NE1000) -> None:
    await pump.set_diameter_mm(12.06)
    await pump.set_volume_ml(0)
    await pump.set_rate_ml_min(1.0)
    await pump.run()
    with pytest.raises(NotApplicable):
        await pump._command("RAT1.500MM", retry=False)
    assert await pump.set_rate_ml_min(1.5, running=True) == pytest.approx(1.5)
    assert await pump.stop() is PumpStatus.PAUSED


async def test_external_stop_input(emulator: NE1000Emulator, pump: NE1000) -> None:
    await pump.set_volume_ml(0)
    await pump.run()
    emulator.external_stop(True)
    assert await pump.status() is PumpStatus.STOPPED
    with pytest.raises(NotApplicable):
        await pump.run()
    emulator.external_stop(False)
    assert await pump.run() is PumpStatus.INFUSING
    await pump.stop()


async def test_stall_raises_alarm_unprompted_in_safe_mode(
    emulator: NE1000Emulator, pump: NE1000
) -> None:
    seen: list[PumpAlarm] = []
    pump.on_alarm = lambda reply: seen.append(reply.alarm)  # type: ignore[arg-type]
    await pump.enable_safe_mode(5)
    await pump.set_volume_ml(0)
    await pump.run()
    emulator.faults.stall()
    await wait_until(emulator, lambda: PumpAlarm.STALLED in seen)  # arrives with no command sent
    assert emulator.model.status is PumpStatus.STOPPED
    with pytest.raises(PumpAlarmRaised):
        await pump.status()  # the first reply after the alarm acknowledges it
    assert await pump.status() is PumpStatus.STOPPED
    await pump.disable_safe_mode()


async def test_safe_mode_stops_the_pump_when_the_host_goes_quiet(
    emulator: NE1000Emulator, pump: NE1000
) -> None:
    await pump.set_volume_ml(0)
    await pump.enable_safe_mode(1)
    await pump.run()
    pump.link.cancel_heartbeat()  # the host dies: nothing more is sent
    started = time.monotonic()
    await wait_until(emulator, lambda: emulator.model.status is PumpStatus.STOPPED, 3.0)
    assert 0.9 < time.monotonic() - started < 1.3
    assert emulator.model.alarm is PumpAlarm.SAFE_TIMEOUT


async def test_heartbeat_keeps_a_healthy_host_running(
    emulator: NE1000Emulator, pump: NE1000
) -> None:
    await pump.set_volume_ml(0)
    await pump.enable_safe_mode(1)
    await pump.run()
    # about 3 s of idle host
    await wait_until(emulator, lambda: pump.link.heartbeats_sent >= 8, 5.0)
    assert emulator.model.status is PumpStatus.INFUSING and emulator.model.alarm is None
    await pump.stop()
    await pump.disable_safe_mode()


async def test_fault_silent_gives_timeout_then_recovers(
    emulator: NE1000Emulator, pump: NE1000
) -> None:
    emulator.faults.go_silent(0.4)
    assert await pump.status() is PumpStatus.STOPPED  # a short silence is bridged by retries
    emulator.faults.go_silent(1.5)
    started = time.monotonic()
    with pytest.raises(PumpTimeout):
        await pump.status()
    assert time.monotonic() - started < 1.2  # 3 attempts x 0.3 s, no hang
    await wait_until(emulator, lambda: not emulator.faults.silent)
    assert await pump.status() is PumpStatus.STOPPED


async def test_fault_late_answer(emulator: NE1000Emulator, pump: NE1000) -> None:
    emulator.faults.answer_late(1.5)
    with pytest.raises(PumpTimeout):
        await pump.diameter_mm()
    emulator.faults.answer_late(0.0)
    # late replies counted, dropped
    await wait_until(emulator, lambda: pump.link.stray_replies >= 3)
    emulator.faults.answer_late(0.1)
    assert await pump.diameter_mm() == pytest.approx(12.06)


@pytest.mark.parametrize("fault", ["corrupt", "crc", "garbage"])
async def test_line_faults_are_survived(emulator: NE1000Emulator, pump: NE1000, fault: str) -> None:
    await pump.enable_safe_mode(5)
    if fault == "corrupt":
        emulator.faults.corrupt_next_reply()
    elif fault == "crc":
        emulator.faults.bad_crc_next_reply()
    else:
        emulator.faults.inject_garbage(40)
    assert await pump.diameter_mm() == pytest.approx(12.06)  # retried, clean value
    await pump.disable_safe_mode()


async def test_fault_drop_link_is_a_typed_error(emulator: NE1000Emulator, pump: NE1000) -> None:
    emulator.faults.drop_link(0.3)
    with pytest.raises(PumpLinkLost):
        await pump.status()
    await wait_until(emulator, lambda: emulator.link.plugged)
    again = await NE1000.open(emulator.path)
    assert await again.status() is PumpStatus.STOPPED
    await again.close()


async def test_fault_reset_mid_run(emulator: NE1000Emulator, pump: NE1000) -> None:
    await pump.set_volume_ml(0)
    await pump.run()
    emulator.faults.reset()
    with pytest.raises(PumpAlarmRaised) as info:
        await pump.status()
    assert info.value.alarm is PumpAlarm.RESET
    assert await pump.status() is PumpStatus.STOPPED
    assert await pump.dispensed_ml() == (0.0, 0.0)


async def test_inband_faults(emulator: NE1000Emulator, pump: NE1000) -> None:
    pump.transport.write_nowait(b"!!silent 1.5\r")
    with pytest.raises(PumpTimeout):
        await pump.status()
    await wait_until(emulator, lambda: not emulator.faults.silent)
    pump.transport.write_nowait(b"!!reset\r")
    with pytest.raises(PumpAlarmRaised):
        await pump.status()


async def test_safe_mode_survives_power_cycle_and_driver_recovers(
    emulator: NE1000Emulator, pump: NE1000
) -> None:
    await pump.enable_safe_mode(3)
    await pump.close()
    emulator.faults.reset()  # pump restarts in safe mode with A?R pending
    assert emulator.model.safe_mode
    again = await NE1000.open(emulator.path)
    try:
        assert not emulator.model.safe_mode and emulator.model.alarm is None
        assert again.alarms and again.alarms[0].alarm is PumpAlarm.RESET
    finally:
        await again.close()
