"""Typed PTB/1 messages against the spec's vectors, and decoding that never raises."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.messages import (
    Ack,
    AckResult,
    Malformed,
    Samples,
    Status,
    StatusFlag,
    Trip,
    TripReason,
    decode_device,
    ping,
    stream,
    trip_limit,
    watchdog,
)
from firmware_bridge.ptb1 import FrameReceiver, encode_frame


def decode_wire(frame_hex: str) -> object:
    [(ptype, _seq, payload)] = FrameReceiver().feed(bytes.fromhex(frame_hex))
    return decode_device(ptype, payload)


def test_device_vectors_decode() -> None:
    samples = decode_wire(
        "03 02 07 01 01 01 03 e8 03 01 04 e8 03 02 01 01 01 07 07 eb ff ff 25 e3 00"
    )
    assert samples == Samples(index=0, t_us=1000, period_us=1000, raw=(0, -5369))
    assert decode_wire("02 04 02 01 01 02 7d 00") == Ack(ack_seq=1, result=AckResult.OK)
    trip = decode_wire("07 06 09 01 a0 8f 3e 04 40 e2 01 03 fc 70 00")
    assert trip == Trip(TripReason.OVER_LIMIT, raw=4100000, t_us=123456)


def test_host_vectors_encode() -> None:
    t, p = stream(1000, 1)
    assert encode_frame(t, 1, p) == bytes.fromhex("08 82 01 e8 03 01 09 4d 00")
    t, p = ping(0xDEADBEEF)
    assert encode_frame(t, 2, p) == bytes.fromhex("09 83 02 ef be ad de 38 a4 00")
    t, p = watchdog(250)
    assert encode_frame(t, 3, p) == bytes.fromhex("04 84 03 fa 03 53 36 00")
    t, p = trip_limit(4026525, 3)
    assert encode_frame(t, 4, p) == bytes.fromhex("06 85 04 9d 70 3d 04 03 23 d7 00")


def test_status_flags() -> None:
    payload = struct.pack("<HHIH", 0b1_0010_1001, 4998, 7, 2)
    status = decode_device(0x03, payload)
    assert isinstance(status, Status)
    assert StatusFlag.SENSOR_OPEN in status.flags and StatusFlag.BOOTED in status.flags
    assert StatusFlag.INTERLOCK_ASSERTED in status.flags and StatusFlag.STREAMING in status.flags
    assert (status.excitation_mv, status.overruns, status.rx_errors) == (4998, 7, 2)


@given(st.integers(0, 255), st.binary(max_size=62))
def test_decode_never_raises(ptype: int, payload: bytes) -> None:
    message = decode_device(ptype, payload)
    if ptype not in range(1, 8):
        assert isinstance(message, Malformed)


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(1, 65535),
    st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=12),
)
def test_samples_roundtrip(index: int, t_us: int, period_us: int, raw: list[int]) -> None:
    payload = struct.pack(f"<IIHB{len(raw)}i", index, t_us, period_us, len(raw), *raw)
    assert decode_device(0x02, payload) == Samples(index, t_us, period_us, tuple(raw))
