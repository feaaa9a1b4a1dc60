"""The driver's exact bytes on the wire, against a scripted peer on a pty."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.ne1000 import NE1000
from drivers.ne1000_link import PumpTimeout
from drivers.ne1000_protocol import (
    CommandIgnored,
    CommandNotRecognized,
    Direction,
    LimitError,
    MalformedReply,
    NotApplicable,
    OutOfRange,
    PacketRejected,
    PumpAlarm,
    PumpAlarmRaised,
    PumpStatus,
    encode_safe,
    parse_dispensed,
)
from tests.support.scripted_peer import ScriptedPeer

SAF0 = encode_safe(b"0SAF0")


def basic(text: str) -> bytes:
    return b"\x02" + text.encode() + b"\x03"


def safe(text: str) -> bytes:
    return encode_safe(text.encode())


CONNECT = [(SAF0, basic("00A?R")), (SAF0, basic("00S")), (b"0VER\r", basic("00SNE1000V3.928"))]


async def run_script(tmp_path: Path, script: list[tuple[bytes, bytes]], body: object) -> NE1000:
    with ScriptedPeer(tmp_path / "pump", CONNECT + script) as peer:
        pump = await NE1000.open(peer.path, command_timeout_s=0.2, retries=1)
        try:
            await body(pump)  # type: ignore[operator]
        finally:
            await pump.close()
        peer.check()
    return pump


async def test_connect_acknowledges_reset_alarm_and_identifies(tmp_path: Path) -> None:
    async def body(pump: NE1000) -> None:
        assert pump.identity is not None
        assert pump.identity.model == 1000 and pump.identity.firmware == (3, 928)
        assert [a.alarm for a in pump.alarms] == [PumpAlarm.RESET]

    await run_script(tmp_path, [], body)


async def test_settings_are_read_back(tmp_path: Path) -> None:
    script = [
        (b"0DIA12.06\r", basic("00S")),
        (b"0DIA\r", basic("00S12.05")),
        (b"0RAT1000UM\r", basic("00S")),
        (b"0RAT\r", basic("00S1000.UM")),
        (b"0VOLUL\r", basic("00S")),
        (b"0VOL500.0\r", basic("00S")),
        (b"0VOL\r", basic("00S500.0UL")),
        (b"0DIRINF\r", basic("00S")),
        (b"0DIR\r", basic("00SINF")),
    ]

    async def body(pump: NE1000) -> None:
        assert await pump.set_diameter_mm(12.06) == 12.05  # what the pump took, not what we asked
        assert await pump.set_rate_ml_min(1.0) == pytest.approx(1.0)
        assert await pump.set_volume_ml(0.5) == pytest.approx(0.5)
        assert await pump.set_direction(Direction.INFUSE) is Direction.INFUSE

    await run_script(tmp_path, script, body)


async def test_rate_units_cover_all_four(tmp_path: Path) -> None:
    script = [
        (b"0DIA\r", basic("00S26.59")),
        (b"0RAT44.28UH\r", basic("00S")),
        (b"0RAT\r", basic("00S44.28UH")),
        (b"0RAT234.5UM\r", basic("00S")),
        (b"0RAT\r", basic("00S234.5UM")),
        (b"0RAT25.56MM\r", basic("00S")),
        (b"0RAT\r", basic("00S25.56MM")),
        (b"0RAT1234MH\r", basic("00S")),
        (b"0RAT\r", basic("00S1234.MH")),
    ]

    async def body(pump: NE1000) -> None:
        assert await pump.set_rate_ml_min(0.000738) == pytest.approx(0.000738)
        assert await pump.set_rate_ml_min(0.2345) == pytest.approx(0.2345)
        assert await pump.set_rate_ml_min(25.55555) == pytest.approx(25.56)
        assert await pump.set_rate_ml_min(1234 / 60) == pytest.approx(1234 / 60)

    await run_script(tmp_path, script, body)


async def test_rate_change_while_running_keeps_the_unit(tmp_path: Path) -> None:
    script = [
        (b"0DIA\r", basic("00I12.06")),
        (b"0RAT\r", basic("00I1.000MM")),
        (b"0RAT2.000MM\r", basic("00I")),
        (b"0RAT\r", basic("00I2.000MM")),
    ]

    async def body(pump: NE1000) -> None:
        assert await pump.set_rate_ml_min(2.0, running=True) == pytest.approx(2.0)

    await run_script(tmp_path, script, body)


async def test_out_of_range_values_are_refused_before_sending(tmp_path: Path) -> None:
    script = [(b"0DIA\r", basic("00S12.06"))]

    async def body(pump: NE1000) -> None:
        with pytest.raises(LimitError, match=r"outside 0\.1-50"):
            await pump.set_diameter_mm(60)
        with pytest.raises(LimitError, match=r"plunger-speed range .* 12.06 mm"):
            await pump.set_rate_ml_min(50.0)
        with pytest.raises(LimitError, match="volume"):
            await pump.set_volume_ml(-1)
        with pytest.raises(LimitError, match="address"):
            NE1000(pump.transport, 100)

    await run_script(tmp_path, script, body)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("00S?", CommandNotRecognized),
        ("00I?NA", NotApplicable),
        ("00S?OOR", OutOfRange),
        ("00S?IGN", CommandIgnored),
    ],
)
async def test_error_replies_raise_typed_errors(tmp_path: Path, reply: str, error: type) -> None:
    script = [
        (b"0BUZ1\r", basic(reply)),
        *([(b"0BUZ1\r", basic(reply))] if error is PacketRejected else []),
    ]

    async def body(pump: NE1000) -> None:
        with pytest.raises(error) as info:
            await pump.buzz(True)
        assert "BUZ1" in str(info.value)

    await run_script(tmp_path, script, body)


@pytest.mark.parametrize("letter", ["R", "S", "T", "E", "O"])
async def test_alarm_replies_raise_and_are_recorded(tmp_path: Path, letter: str) -> None:
    script = [(b"0RUN\r", basic(f"00A?{letter}"))]
    seen: list[PumpAlarm] = []

    async def body(pump: NE1000) -> None:
        pump.on_alarm = lambda reply: seen.append(reply.alarm)  # type: ignore[arg-type]
        with pytest.raises(PumpAlarmRaised) as info:
            await pump.run()
        assert info.value.alarm is PumpAlarm(letter)

    await run_script(tmp_path, script, body)
    assert seen == [PumpAlarm(letter)]


async def test_status_query_retried_after_com_error_and_garbage(tmp_path: Path) -> None:
    script = [(b"0\r", basic("00S?COM")), (b"0\r", b"\xff\x00junk" + basic("00I"))]

    async def body(pump: NE1000) -> None:
        assert await pump.status() is PumpStatus.INFUSING

    await run_script(tmp_path, script, body)


async def test_run_is_not_resent_when_the_pump_already_runs(tmp_path: Path) -> None:
    script = [(b"0RUN\r", b""), (b"0\r", basic("00I"))]

    async def body(pump: NE1000) -> None:
        assert await pump.run() is PumpStatus.INFUSING

    await run_script(tmp_path, script, body)


async def test_run_resent_once_only_after_the_pump_says_stopped(tmp_path: Path) -> None:
    script = [(b"0RUN\r", b""), (b"0\r", basic("00S")), (b"0RUN\r", basic("00I"))]

    async def body(pump: NE1000) -> None:
        assert await pump.run() is PumpStatus.INFUSING

    await run_script(tmp_path, script, body)


async def test_query_gives_up_with_a_timeout(tmp_path: Path) -> None:
    script = [(b"0DIS\r", b""), (b"0DIS\r", b"")]

    async def body(pump: NE1000) -> None:
        with pytest.raises(PumpTimeout, match="did not answer 'DIS'"):
            await pump.dispensed_ml()

    await run_script(tmp_path, script, body)


async def test_malformed_reply_is_a_typed_error(tmp_path: Path) -> None:
    script = [(b"0DIS\r", basic("00SIxW")), (b"0DIS\r", basic("00SI1.000W0.000ML"))]

    async def body(pump: NE1000) -> None:
        assert await pump.dispensed_ml() == (1.0, 0.0)  # the retry succeeds
        assert pump.transport.is_open

    await run_script(tmp_path, script, body)
    with pytest.raises(MalformedReply):
        parse_dispensed("IxW")


async def test_a_stray_stx_and_zero_does_not_swallow_the_next_reply(tmp_path: Path) -> None:
    """STX 0x00 once read as a safe-mode frame of length 0 that never ended: the reply after
    it (and the next 60 bytes) was lost and the query timed out."""
    script = [(b"0\r", b"\x02\x00" + basic("00I"))]

    async def body(pump: NE1000) -> None:
        assert await pump.status() is PumpStatus.INFUSING  # first attempt, no retry

    await run_script(tmp_path, script, body)


async def test_a_reply_from_another_pump_address_is_not_taken_for_ours(tmp_path: Path) -> None:
    script = [(b"0DIS\r", basic("01SI9.000W0.000ML")), (b"0DIS\r", basic("00SI1.000W0.000ML"))]

    async def body(pump: NE1000) -> None:
        assert await pump.dispensed_ml() == (1.0, 0.0)  # address 01 refused, then retried

    await run_script(tmp_path, script, body)


async def test_safe_mode_frames_and_stop(tmp_path: Path) -> None:
    script = [
        (safe("0SAF5"), safe("00S")),
        (safe("0DIS"), safe("00II0.250W0.000ML")),
        (safe("0STP"), safe("00P")),
        (SAF0, basic("00S")),
    ]

    async def body(pump: NE1000) -> None:
        await pump.enable_safe_mode(5)
        assert await pump.dispensed_ml() == (0.25, 0.0)
        assert await pump.stop() is PumpStatus.PAUSED
        await pump.disable_safe_mode()

    await run_script(tmp_path, script, body)


async def test_safe_mode_is_left_only_after_the_pump_confirms_its_stop(tmp_path: Path) -> None:
    """``pump infuse`` and the gravimetric test once sent SAF0 after an STP that failed:
    the pump kept running with its own watchdog off. Unconfirmed, no SAF0 goes out."""
    unconfirmed = [
        (safe("0SAF5"), safe("00S")),
        (safe("0STP"), b""),  # no answer, and none to the status query that follows
        (safe("0"), b""),
        (safe("0"), b""),
    ]

    async def body(pump: NE1000) -> None:
        await pump.enable_safe_mode(5)
        assert await pump.stop_then_disable_safe_mode() is False
        assert pump.link.safe_mode  # left armed: its timeout stops the pump

    await run_script(tmp_path, unconfirmed, body)
    confirmed = [(safe("0SAF5"), safe("00S")), (safe("0STP"), safe("00P")), (SAF0, basic("00S"))]

    async def body_confirmed(pump: NE1000) -> None:
        await pump.enable_safe_mode(5)
        assert await pump.stop_then_disable_safe_mode() is True
        assert not pump.link.safe_mode

    await run_script(tmp_path, confirmed, body_confirmed)


async def test_stop_goes_out_while_another_command_is_in_flight(tmp_path: Path) -> None:
    """STP is pipelined behind a pending query; replies are matched in order."""
    script = [(b"0DIS\r", b""), (b"0STP\r", basic("00SI0.100W0.000ML") + basic("00P"))]

    async def body(pump: NE1000) -> None:
        query = asyncio.create_task(pump.dispensed_ml())
        await asyncio.sleep(0)  # one loop turn: the query task writes DIS and waits
        assert pump.link.in_flight == 1
        stop_reply = await pump.stop_nowait()
        assert stop_reply.status is PumpStatus.PAUSED
        assert await query == (0.1, 0.0)

    await run_script(tmp_path, script, body)
