"""Typed PTB/1 messages for the host: decode what the device sends, encode commands.

Layouts are ``struct`` formats taken from ``../shared/specs/bridge-protocol.md``
(little-endian throughout). Decoding never raises on a well-framed packet with
a bad payload: it returns :class:`Malformed`, which the client counts.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass


class DeviceType(enum.IntEnum):
    HELLO = 0x01
    SAMPLES = 0x02
    STATUS = 0x03
    ACK = 0x04
    PONG = 0x05
    TRIP = 0x06
    LOG = 0x07


class HostType(enum.IntEnum):
    HELLO_REQUEST = 0x81
    STREAM = 0x82
    PING = 0x83
    WATCHDOG = 0x84
    TRIP_LIMIT = 0x85
    INTERLOCK = 0x86


class StatusFlag(enum.IntFlag):
    SENSOR_OPEN = 1 << 0
    ADC_SATURATED = 1 << 1
    EXCITATION_FAULT = 1 << 2
    INTERLOCK_ASSERTED = 1 << 3
    WATCHDOG_EXPIRED = 1 << 4
    STREAMING = 1 << 5
    TRIP_ARMED = 1 << 6
    WATCHDOG_ARMED = 1 << 7
    BOOTED = 1 << 8


class TripReason(enum.IntEnum):
    OVER_LIMIT = 1
    WATCHDOG = 2
    SENSOR_FAULT = 3
    HOST_COMMAND = 4


class AckResult(enum.IntEnum):
    OK = 0
    BAD_ARGUMENT = 1
    BAD_STATE = 2
    UNKNOWN_TYPE = 3


@dataclass(frozen=True, slots=True)
class Hello:
    proto: int
    fw_major: int
    fw_minor: int
    device_id: int
    adc_bits: int
    excitation_mv: int
    nominal_zero: int
    nominal_gain: float
    max_rate_hz: int


@dataclass(frozen=True, slots=True)
class Samples:
    index: int
    t_us: int
    period_us: int
    raw: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Status:
    flags: StatusFlag
    excitation_mv: int
    overruns: int
    rx_errors: int


@dataclass(frozen=True, slots=True)
class Ack:
    ack_seq: int
    result: AckResult


@dataclass(frozen=True, slots=True)
class Pong:
    nonce: int
    t_us: int


@dataclass(frozen=True, slots=True)
class Trip:
    reason: TripReason
    raw: int
    t_us: int


@dataclass(frozen=True, slots=True)
class Log:
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class Malformed:
    ptype: int
    payload: bytes
    why: str


DeviceMessage = Hello | Samples | Status | Ack | Pong | Trip | Log | Malformed

_HELLO = struct.Struct("<BBBIBHifH")
_SAMPLES_HEAD = struct.Struct("<IIHB")
_STATUS = struct.Struct("<HHIH")
_ACK = struct.Struct("<BB")
_PONG = struct.Struct("<II")
_TRIP = struct.Struct("<BiI")


def decode_device(ptype: int, payload: bytes) -> DeviceMessage:
    """Turn a checked packet from the device into a typed message."""
    try:
        return _decode(ptype, payload)
    except (struct.error, ValueError) as exc:
        return Malformed(ptype, payload, str(exc))


def _decode(ptype: int, payload: bytes) -> DeviceMessage:
    if ptype == DeviceType.SAMPLES:
        index, t_us, period_us, n = _SAMPLES_HEAD.unpack_from(payload)
        if not 1 <= n <= 12 or len(payload) != _SAMPLES_HEAD.size + 4 * n:
            raise ValueError(f"SAMPLES with n={n} and {len(payload)} payload bytes")
        raw = struct.unpack_from(f"<{n}i", payload, _SAMPLES_HEAD.size)
        return Samples(index, t_us, period_us, raw)
    if ptype == DeviceType.HELLO:
        return Hello(*_exact(_HELLO, payload))
    if ptype == DeviceType.STATUS:
        flags, exc_mv, overruns, rx_errors = _exact(_STATUS, payload)
        return Status(StatusFlag(flags), exc_mv, overruns, rx_errors)
    if ptype == DeviceType.ACK:
        ack_seq, result = _exact(_ACK, payload)
        return Ack(ack_seq, AckResult(result))
    if ptype == DeviceType.PONG:
        return Pong(*_exact(_PONG, payload))
    if ptype == DeviceType.TRIP:
        reason, last_raw, trip_t_us = _exact(_TRIP, payload)
        return Trip(TripReason(reason), last_raw, trip_t_us)
    if ptype == DeviceType.LOG:
        if not payload or len(payload) > 41:
            raise ValueError("LOG text over 40 bytes")
        return Log(payload[0], payload[1:].decode("utf-8", "replace"))
    raise ValueError(f"unknown device type 0x{ptype:02x}")


def _exact(layout: struct.Struct, payload: bytes) -> tuple[int, ...]:
    if len(payload) != layout.size:
        raise ValueError(f"payload of {len(payload)} bytes, expected {layout.size}")
    return tuple(layout.unpack(payload))


# ---------------------------------------------------------------- host -> device payloads


def hello_request() -> tuple[int, bytes]:
    return HostType.HELLO_REQUEST, b""


def stream(rate_hz: int, per_frame: int) -> tuple[int, bytes]:
    return HostType.STREAM, struct.pack("<HB", rate_hz, per_frame)


def ping(nonce: int) -> tuple[int, bytes]:
    return HostType.PING, struct.pack("<I", nonce)


def watchdog(timeout_ms: int) -> tuple[int, bytes]:
    return HostType.WATCHDOG, struct.pack("<H", timeout_ms)


def trip_limit(raw_limit: int, consecutive: int) -> tuple[int, bytes]:
    return HostType.TRIP_LIMIT, struct.pack("<iB", raw_limit, consecutive)


def interlock(assert_line: bool) -> tuple[int, bytes]:
    return HostType.INTERLOCK, struct.pack("<B", 1 if assert_line else 0)
