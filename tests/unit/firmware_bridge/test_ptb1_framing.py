"""PTB/1 framing: the spec's test vectors and property tests of the receiver."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.ptb1 import (
    FrameReceiver,
    cobs_decode,
    cobs_encode,
    crc16_ccitt_false,
    crc16_table,
    encode_frame,
)

# (packet before COBS, frame on the wire) from ../shared/specs/bridge-protocol.md
VECTORS = [
    ("81 00 a6 35", "02 81 03 a6 35 00"),
    ("82 01 e8 03 01 09 4d", "08 82 01 e8 03 01 09 4d 00"),
    ("83 02 ef be ad de 38 a4", "09 83 02 ef be ad de 38 a4 00"),
    ("84 03 fa 00 53 36", "04 84 03 fa 03 53 36 00"),
    ("85 04 9d 70 3d 00 03 23 d7", "06 85 04 9d 70 3d 04 03 23 d7 00"),
    (
        "02 07 00 00 00 00 e8 03 00 00 e8 03 02 00 00 00 00 07 eb ff ff 25 e3",
        "03 02 07 01 01 01 03 e8 03 01 04 e8 03 02 01 01 01 07 07 eb ff ff 25 e3 00",
    ),
    ("04 00 01 00 00 7d", "02 04 02 01 01 02 7d 00"),
    ("06 09 01 a0 8f 3e 00 40 e2 01 00 fc 70", "07 06 09 01 a0 8f 3e 04 40 e2 01 03 fc 70 00"),
]


def test_crc_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


@pytest.mark.parametrize(("packet_hex", "frame_hex"), VECTORS)
def test_spec_vectors(packet_hex: str, frame_hex: str) -> None:
    packet, frame = bytes.fromhex(packet_hex), bytes.fromhex(frame_hex)
    body = packet[:-2]
    assert crc16_ccitt_false(body) == int.from_bytes(packet[-2:], "little")
    assert encode_frame(body[0], body[1], body[2:]) == frame
    assert FrameReceiver().feed(frame) == [(body[0], body[1], body[2:])]


@given(st.binary(max_size=300))
def test_cobs_roundtrip_has_no_zero(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert cobs_decode(encoded) == data


packets = st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=60))


@given(st.lists(packets, max_size=10))
def test_frames_roundtrip_through_the_receiver(items: list[tuple[int, int, bytes]]) -> None:
    wire = b"".join(encode_frame(t, s, p) for t, s, p in items)
    receiver = FrameReceiver()
    assert receiver.feed(wire) == items
    assert receiver.rx_errors == 0


@given(st.binary(max_size=200), packets)
def test_garbage_costs_at_most_the_frame_it_lands_in(
    garbage: bytes, item: tuple[int, int, bytes]
) -> None:
    receiver = FrameReceiver()
    got = receiver.feed(garbage + b"\x00" + encode_frame(*item))
    assert got[-1] == item  # resynchronised within one frame
    for ptype, seq, payload in got:
        packet = bytes((ptype, seq)) + payload
        assert len(packet) + 2 <= 64


@given(packets, st.data())
def test_bit_flips_never_yield_a_bad_packet(
    item: tuple[int, int, bytes], data: st.DataObject
) -> None:
    frame = bytearray(encode_frame(*item))
    index = data.draw(st.integers(0, len(frame) - 2))
    frame[index] ^= 1 << data.draw(st.integers(0, 7))
    receiver = FrameReceiver()
    got = receiver.feed(bytes(frame) + encode_frame(*item))
    assert got[-1] == item
    assert all(p == item for p in got)  # a flipped frame is dropped, never delivered altered


def test_empty_frames_are_ignored_without_error() -> None:
    receiver = FrameReceiver()
    assert receiver.feed(b"\x00\x00\x00") == []
    assert receiver.rx_errors == 0


def test_oversized_and_short_frames_are_counted() -> None:
    receiver = FrameReceiver()
    assert receiver.feed(b"\x01" * 200 + b"\x00" + b"\x02\x81\x00") == []
    assert receiver.rx_errors == 2


@given(st.binary(max_size=80))
def test_table_crc_of_the_board_equals_the_c_crc_of_the_host(data: bytes) -> None:
    assert crc16_table(data) == binascii.crc_hqx(data, 0xFFFF)
