"""The firmware core's behaviour, in CPython (the MicroPython run is test_firmware_micropython)."""

from __future__ import annotations

import pytest

from firmware_bridge import messages as m
from firmware_bridge.firmware import core
from firmware_bridge.ptb1 import encode_frame
from tests.support.firmware_harness import CoreHarness, of_type

F = m.StatusFlag


def test_ack_of_the_stream_vector_is_the_spec_ack_vector() -> None:
    h = CoreHarness(boot_at_us=None)
    h.core.receive(bytes.fromhex("08 82 01 e8 03 01 09 4d 00"), 0)
    h.read()
    assert h.wire.startswith(bytes.fromhex("02 04 02 01 01 02 7d 00"))


def test_samples_frame_matches_the_spec_vector() -> None:
    h = CoreHarness()  # HELLO and STATUS: device seq 0 and 1
    h.send(m.stream(1000, 2), 0)  # ACK and STATUS: seq 2 and 3
    while h.last_seq < 6:
        h.send(m.ping(0), 0)
    h.samples([0, -5369], t0_us=1000)
    expected = "03 02 07 01 01 01 03 e8 03 01 04 e8 03 02 01 01 01 07 07 eb ff ff 25 e3 00"
    assert h.wire == bytes.fromhex(expected)


def test_trip_frame_matches_the_spec_vector() -> None:
    h = CoreHarness()
    h.send(m.trip_limit(4026525, 1), 0)
    while h.last_seq < 8:
        h.send(m.ping(0), 0)
    h.core.sample(4100000, 123456)
    h.read()
    assert h.wire.startswith(bytes.fromhex("07 06 09 01 a0 8f 3e 04 40 e2 01 03 fc 70 00"))
    assert h.moves == [True]


def test_boot_says_hello_and_booted_until_asked() -> None:
    h = CoreHarness(boot_at_us=None)
    h.core.boot(0)
    hello, status = h.read()
    assert isinstance(hello, m.Hello) and hello.proto == 1 and hello.nominal_gain == 5369.0
    assert isinstance(status, m.Status) and F.BOOTED in status.flags
    replies = h.send(m.hello_request(), 10)
    assert isinstance(replies[0], m.Hello)
    assert F.BOOTED not in of_type(replies, m.Status)[-1].flags


@pytest.mark.parametrize(
    ("command", "result"),
    [
        (m.stream(5, 1), m.AckResult.BAD_ARGUMENT),
        (m.stream(1001, 1), m.AckResult.BAD_ARGUMENT),
        (m.stream(1000, 13), m.AckResult.BAD_ARGUMENT),
        (m.stream(0, 0), m.AckResult.OK),  # a stop is never refused
        (m.watchdog(19), m.AckResult.BAD_ARGUMENT),
        (m.watchdog(5001), m.AckResult.BAD_ARGUMENT),
        (m.trip_limit(100, 51), m.AckResult.BAD_ARGUMENT),
        ((0x86, b"\x02"), m.AckResult.BAD_ARGUMENT),
        ((0x82, b"\x01"), m.AckResult.BAD_ARGUMENT),
        ((0x99, b""), m.AckResult.UNKNOWN_TYPE),
    ],
)
def test_arguments_out_of_range_change_nothing(
    command: tuple[int, bytes], result: m.AckResult
) -> None:
    h = CoreHarness()
    h.read()
    before = h.core.flags
    [ack] = of_type(h.send(command, 10), m.Ack)
    assert ack == m.Ack(ack_seq=0, result=result)
    assert h.core.flags == before


def test_stream_batches_and_restarts_index() -> None:
    h = CoreHarness()
    h.send(m.stream(1000, 3), 0)
    batches = of_type(h.samples(list(range(7)), t0_us=1000), m.Samples)
    got = [(b.index, b.t_us, b.raw) for b in batches]
    assert got == [(0, 1000, (0, 1, 2)), (3, 4000, (3, 4, 5))]
    replies = h.send(m.stream(0, 1), 8000)  # the partial batch is flushed, not lost
    assert of_type(replies, m.Samples)[0].raw == (6,)
    h.send(m.stream(500, 1), 9000)
    [first] = of_type(h.samples([42], t0_us=11000), m.Samples)
    assert (first.index, first.period_us) == (0, 2000)


@pytest.mark.parametrize("rate_hz", [10, 12, 15])
def test_a_stream_slower_than_16_hz_does_not_overflow_the_period_field(rate_hz: int) -> None:
    """PTB/1 allows 10 Hz, but SAMPLES carries the period as a u16 (at most 65535 us):
    1e6 / 15 overflowed ``struct.pack`` and the stream died with an exception. Each sample
    goes alone with its exact t_us; the period field saturates."""
    h = CoreHarness()
    replies = h.send(m.stream(rate_hz, 4), 0)
    assert of_type(replies, m.Ack)[0].result is m.AckResult.OK
    period_us = 1_000_000 // rate_hz
    batches = of_type(h.samples([5, 6, 7], t0_us=1000, period_us=period_us), m.Samples)
    assert [(b.index, b.t_us, b.raw) for b in batches] == [
        (k, 1000 + k * period_us, (5 + k,)) for k in range(3)
    ]
    assert all(b.period_us == 0xFFFF for b in batches)


def test_trip_needs_consecutive_samples_and_release_waits_for_the_cause() -> None:
    h = CoreHarness()
    h.send(m.trip_limit(1000, 3), 0)
    assert not of_type(h.samples([1000, 1000, 999, 1000, 1000], 1000), m.Trip)
    [trip] = of_type(h.samples([1001], 6000), m.Trip)
    assert trip == m.Trip(m.TripReason.OVER_LIMIT, raw=1001, t_us=6000)
    assert h.moves == [True]
    assert not of_type(h.samples([5000, 5000], 7000), m.Trip), "a standing cause trips once"
    [ack] = of_type(h.send(m.interlock(False), 9000), m.Ack)
    assert ack.result is m.AckResult.BAD_STATE and h.core.interlock
    h.samples([0, 0], 10000)  # two of the last three still over the limit
    assert of_type(h.send(m.interlock(False), 12000), m.Ack)[0].result is m.AckResult.BAD_STATE
    h.samples([0], 13000)
    replies = h.send(m.interlock(False), 14000)
    assert of_type(replies, m.Ack)[0].result is m.AckResult.OK
    assert F.INTERLOCK_ASSERTED not in of_type(replies, m.Status)[-1].flags
    assert h.moves == [True, False]


def test_sensor_faults_trip_when_armed_and_block_release() -> None:
    h = CoreHarness()
    h.send(m.trip_limit(2**23, 5), 0)  # above full scale: only sensor faults trip
    h.core.sample(0, 1000, sensor_open=True)
    messages = h.read()
    assert of_type(messages, m.Trip)[0].reason is m.TripReason.SENSOR_FAULT
    assert F.SENSOR_OPEN in of_type(messages, m.Status)[-1].flags
    assert of_type(h.send(m.interlock(False), 2000), m.Ack)[0].result is m.AckResult.BAD_STATE
    flags = of_type(h.samples([core.BridgeCore(1, 0, 1.0).raw_max], 3000), m.Status)[-1].flags
    assert F.ADC_SATURATED in flags and F.SENSOR_OPEN not in flags
    h.samples([0], 4000)
    assert of_type(h.send(m.interlock(False), 5000), m.Ack)[0].result is m.AckResult.OK


def test_excitation_fault_flag_follows_the_measured_excitation() -> None:
    h = CoreHarness()
    h.read()
    h.core.sample(0, 1000, excitation_mv=2300)
    assert F.EXCITATION_FAULT in of_type(h.read(), m.Status)[-1].flags
    h.core.sample(0, 2000, excitation_mv=2490)
    assert F.EXCITATION_FAULT not in of_type(h.read(), m.Status)[-1].flags


def test_watchdog_expiry_asserts_the_line_then_tells_the_host() -> None:
    h = CoreHarness()
    h.send(m.watchdog(50), 0)
    h.core.tick(49_999)
    assert not h.moves
    h.send(m.ping(1), 40_000)  # any valid packet feeds it
    h.core.tick(89_999)
    assert not h.moves
    h.core.tick(90_000)
    messages = h.read()
    assert h.moves == [True]
    assert of_type(messages, m.Trip)[0].reason is m.TripReason.WATCHDOG
    flags = of_type(messages, m.Status)[-1].flags
    assert F.WATCHDOG_EXPIRED in flags and F.WATCHDOG_ARMED not in flags
    replies = h.send(m.interlock(False), 100_000)
    assert F.WATCHDOG_EXPIRED not in of_type(replies, m.Status)[-1].flags


def test_host_assert_trips_every_time() -> None:
    h = CoreHarness()
    trips = [of_type(h.send(m.interlock(True), t), m.Trip) for t in (10, 20)]
    assert [t[0].reason for t in trips] == [m.TripReason.HOST_COMMAND] * 2
    assert h.moves == [True]


def test_status_twice_a_second_and_rx_errors_counted() -> None:
    h = CoreHarness()
    h.read()
    h.core.receive(b"\x01\x02\x03\x00" + encode_frame(0x83, 0, b"\0\0\0\0"), 10)
    h.read()
    h.core.tick(499_999)
    assert not h.read()
    h.core.tick(500_000)
    [status] = of_type(h.read(), m.Status)
    assert status.rx_errors == 1


def test_overruns_when_the_uart_cannot_keep_up() -> None:
    h = CoreHarness()
    h.send(m.stream(1000, 1), 0)
    for k in range(200):  # nobody drains the UART
        h.core.sample(k, 1000 + 1000 * k)
    assert h.core.overruns > 0
    batches = of_type(h.read(), m.Samples)
    assert batches[-1].index + 1 + h.core.overruns == 200


def test_device_clock_wraps() -> None:
    start = 2**32 - 1500
    h = CoreHarness(boot_at_us=start)
    h.send(m.watchdog(20), start)
    h.core.tick((start + 19_999) & 0xFFFFFFFF)
    assert not h.moves
    h.core.tick((start + 20_000) & 0xFFFFFFFF)
    assert h.moves == [True]
