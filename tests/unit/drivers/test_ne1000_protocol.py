"""Number formatting, framing and reply parsing of the NE-1000 protocol."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ne1000_protocol import (
    LimitError,
    MalformedReply,
    PumpAlarm,
    PumpStatus,
    RateUnit,
    best_rate_unit,
    crc16_xmodem,
    decode_safe,
    encode_safe,
    format_number,
    format_reply_number,
    parse_dispensed,
    parse_rate,
    parse_reply,
    parse_version,
    rate_limits_ml_min,
)


def test_manual_example_packet_returns_to_basic_mode() -> None:
    assert encode_safe(b"SAF0") == bytes([0x02, 0x08]) + b"SAF0" + bytes([0x55, 0x43, 0x03])


def test_crc_is_xmodem() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12.06, "12.06"),
        (0.5, "0.500"),
        (1000.0, "1000"),
        (14.43, "14.43"),
        (9999.4, "9999"),
        (123.456, "123.5"),
        (0.0005, "0.001"),
        (5.0, "5.000"),
        (0.0, "0.000"),
    ],
)
def test_format_number_examples(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize("value", [10000.0, -1.0, math.nan, math.inf, 0.0004])
def test_format_number_refuses(value: float) -> None:
    with pytest.raises(LimitError):
        format_number(value)


@given(st.floats(min_value=0.0005, max_value=9999.49, allow_nan=False))
def test_format_number_fits_the_pump_format(value: float) -> None:
    text = format_number(value)
    digits = sum(c.isdigit() for c in text)
    decimals = len(text.split(".")[1]) if "." in text else 0
    assert digits <= 4 and decimals <= 3
    resolution = 10.0**-decimals
    assert abs(float(text) - value) <= resolution / 2 + 1e-9


@given(st.floats(min_value=0, max_value=9999.49, allow_nan=False))
def test_reply_numbers_always_carry_a_point(value: float) -> None:
    assert "." in format_reply_number(value)


@given(st.floats(min_value=1e-5, max_value=100.0, allow_nan=False))
def test_best_rate_unit_loses_least(rate_ml_min: float) -> None:
    chosen = best_rate_unit(rate_ml_min)

    def err(unit: RateUnit) -> float:
        try:
            return abs(
                float(format_number(rate_ml_min / unit.ml_min_per_unit)) * unit.ml_min_per_unit
                - rate_ml_min
            )
        except LimitError:
            return math.inf

    assert err(chosen) <= min(err(u) for u in RateUnit) + 1e-12


def test_rate_limits_follow_plunger_speed() -> None:
    _, high = rate_limits_ml_min(14.43)
    assert high == pytest.approx(8.31, rel=0.01)  # domain facts: about 8.3 mL/min
    low_1ml, _ = rate_limits_ml_min(4.78)
    assert low_1ml * 60_000 == pytest.approx(0.73, rel=0.02)  # 0.73 uL/h with a 1 mL syringe


def test_parse_replies() -> None:
    r = parse_reply("00S12.06", 1.5)
    assert (r.address, r.status, r.alarm, r.data, r.t_mono_s) == (
        0,
        PumpStatus.STOPPED,
        None,
        "12.06",
        1.5,
    )
    assert parse_reply("07A?S").alarm is PumpAlarm.STALLED
    assert parse_reply("00I?NA").error_code == "NA"
    assert parse_reply("00S?").error_code == ""
    assert parse_rate("5.000MM") == (5.0, RateUnit.ML_MIN)
    assert parse_dispensed("I1.250W0.500ML") == (1.25, 0.5)
    assert parse_dispensed("I250.0W0.000UL") == pytest.approx((0.25, 0.0))
    assert parse_version("NE1000V3.928") == (1000, 3, 928)


@pytest.mark.parametrize("text", ["", "0S", "00Q", "00A?Z", "00S?XYZ", "xxS"])
def test_parse_reply_rejects(text: str) -> None:
    with pytest.raises(MalformedReply):
        parse_reply(text)


@given(st.text(max_size=30))
def test_parse_reply_never_raises_anything_but_malformed(text: str) -> None:
    with contextlib.suppress(MalformedReply):
        parse_reply(text)


@given(st.binary(min_size=0, max_size=40))
def test_safe_roundtrip(data: bytes) -> None:
    assert decode_safe(encode_safe(data)) == data


@given(st.binary(min_size=1, max_size=30), st.data())
def test_safe_bit_flips_are_caught(data: bytes, draw: st.DataObject) -> None:
    packet = bytearray(encode_safe(data))
    index = draw.draw(st.integers(min_value=2, max_value=len(packet) - 2))
    bit = draw.draw(st.integers(min_value=0, max_value=7))
    packet[index] ^= 1 << bit
    with pytest.raises(MalformedReply):
        decode_safe(bytes(packet))
