"""NE-1000 wire protocol: numbers, framing and reply parsing, with no I/O.

Kept apart from the async driver so that the parsing can be property-tested on
its own and so that the emulator and the driver agree on the pump's physical
limits without sharing the code that talks on the wire.
"""

from __future__ import annotations

import binascii
import enum
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

STX = 0x02
ETX = 0x03
CR = 0x0D

ADDRESS_MAX = 99
SAFE_TIMEOUT_MAX_S = 255
DIAMETER_MIN_MM = 0.1
DIAMETER_MAX_MM = 50.0
# Plunger speed range of the NE-1000 family (manual specifications: 5.08 cm/min
# maximum; 0.73 uL/h with a 4.78 mm syringe at the slow end).
PLUNGER_SPEED_MAX_CM_MIN = 5.08
PLUNGER_SPEED_MIN_CM_H = 0.00407
NUMBER_MAX = 9999.0


class RateUnit(enum.StrEnum):
    """Rate units the pump accepts; the value is the wire spelling."""

    UL_MIN = "UM"
    ML_MIN = "MM"
    UL_H = "UH"
    ML_H = "MH"

    @property
    def ml_min_per_unit(self) -> float:
        """How many mL/min one unit of this rate is."""
        return _RATE_UNIT_ML_MIN[self]


_RATE_UNIT_ML_MIN = {
    RateUnit.UL_MIN: 1e-3,
    RateUnit.ML_MIN: 1.0,
    RateUnit.UL_H: 1e-3 / 60.0,
    RateUnit.ML_H: 1.0 / 60.0,
}


class VolumeUnit(enum.StrEnum):
    """Volume units the pump accepts; the value is the wire spelling."""

    UL = "UL"
    ML = "ML"

    @property
    def ml_per_unit(self) -> float:
        return 1e-3 if self is VolumeUnit.UL else 1.0


class Direction(enum.StrEnum):
    INFUSE = "INF"
    WITHDRAW = "WDR"


class PumpStatus(enum.StrEnum):
    """The prompt character of a reply."""

    INFUSING = "I"
    WITHDRAWING = "W"
    STOPPED = "S"
    PAUSED = "P"
    TIMED_PAUSE = "T"
    TRIGGER_WAIT = "U"
    PURGING = "X"

    @property
    def moving(self) -> bool:
        return self in (PumpStatus.INFUSING, PumpStatus.WITHDRAWING, PumpStatus.PURGING)


class PumpAlarm(enum.StrEnum):
    """Alarm letter after ``A?``."""

    RESET = "R"
    STALLED = "S"
    SAFE_TIMEOUT = "T"
    PROGRAM_ERROR = "E"
    PHASE_OUT_OF_RANGE = "O"


# --------------------------------------------------------------------------- errors


class PumpError(Exception):
    """Base of every error the NE-1000 driver raises."""


class PumpReplyError(PumpError):
    """The pump answered with an error code after its prompt."""

    code = ""

    def __init__(self, command: str, reply: PumpReply | None = None) -> None:
        self.command = command
        self.reply = reply
        super().__init__(f"pump refused {command!r}: ?{self.code} ({self.meaning})")

    meaning = ""


class CommandNotRecognized(PumpReplyError):
    code = ""
    meaning = "command not recognised"


class NotApplicable(PumpReplyError):
    code = "NA"
    meaning = "not applicable now"


class OutOfRange(PumpReplyError):
    code = "OOR"
    meaning = "data out of range"


class PacketRejected(PumpReplyError):
    code = "COM"
    meaning = "invalid communications packet"


class CommandIgnored(PumpReplyError):
    code = "IGN"
    meaning = "ignored (simultaneous phase start)"


ERROR_CODES: dict[str, type[PumpReplyError]] = {
    cls.code: cls
    for cls in (CommandNotRecognized, NotApplicable, OutOfRange, PacketRejected, CommandIgnored)
}


class PumpAlarmRaised(PumpError):
    """The pump answered with an alarm instead of executing the command.

    The alarm is acknowledged by that very reply; the command was not executed.
    """

    def __init__(self, alarm: PumpAlarm, command: str) -> None:
        self.alarm = alarm
        self.command = command
        super().__init__(f"pump alarm A?{alarm.value} ({alarm.name}) in reply to {command!r}")


class MalformedReply(PumpError):
    """Bytes that are not an NE-1000 reply (framing, CRC, syntax)."""


class LimitError(PumpError, ValueError):
    """A value the pump cannot accept, refused before anything is sent."""


# --------------------------------------------------------------------------- numbers


def format_number(value: float) -> str:
    """Format a value as the pump accepts it: at most 4 digits and 3 decimals.

    Rounds half up to the finest resolution that fits. Raises ``LimitError``
    for values that do not fit or that would round to zero.
    """
    if not math.isfinite(value) or value < 0:
        raise LimitError(f"{value!r} is not a positive finite number")
    text = _format_digits(Decimal(repr(value)))
    if value > 0 and Decimal(text) == 0:
        raise LimitError(f"{value!r} rounds to 0 at the pump's 3-decimal resolution")
    return text


def _format_digits(value: Decimal) -> str:
    for decimals in (3, 2, 1, 0):
        quantum = Decimal(1).scaleb(-decimals)
        rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
        int_digits = len(str(int(rounded))) if int(rounded) > 0 else 1
        if int_digits + decimals <= 4:
            return f"{rounded:.{decimals}f}"
    raise LimitError(f"{value} has more than 4 integer digits (maximum {NUMBER_MAX:g})")


def format_reply_number(value: float) -> str:
    """Format a number as the pump prints it in replies: always with a point."""
    text = _format_digits(Decimal(repr(max(value, 0.0))))
    return text if "." in text else text + "."


def quantisation_error(value: float) -> float:
    """Relative error of representing ``value`` in the pump's number format."""
    try:
        sent = float(format_number(value))
    except LimitError:
        return math.inf
    return abs(sent - value) / value


def best_rate_unit(rate_ml_min: float, allowed: tuple[RateUnit, ...] = tuple(RateUnit)) -> RateUnit:
    """The unit that represents ``rate_ml_min`` with the smallest rounding error.

    Ties go to the unit with the larger number (more significant digits).
    """

    def cost(unit: RateUnit) -> tuple[float, float]:
        in_unit = rate_ml_min / unit.ml_min_per_unit
        return (quantisation_error(in_unit), -in_unit if in_unit <= NUMBER_MAX else math.inf)

    best = min(allowed, key=cost)
    if math.isinf(cost(best)[0]):
        raise LimitError(f"rate {rate_ml_min:g} mL/min cannot be written in units {allowed}")
    return best


def syringe_area_cm2(diameter_mm: float) -> float:
    return math.pi * (diameter_mm / 20.0) ** 2


def rate_limits_ml_min(diameter_mm: float) -> tuple[float, float]:
    """Slowest and fastest rate (mL/min) the plunger drive allows for a syringe."""
    area = syringe_area_cm2(diameter_mm)
    return area * PLUNGER_SPEED_MIN_CM_H / 60.0, area * PLUNGER_SPEED_MAX_CM_MIN


def default_volume_unit(diameter_mm: float) -> VolumeUnit:
    """Manual: at or below 14.00 mm the volume unit defaults to uL, above it to mL."""
    return VolumeUnit.UL if diameter_mm <= 14.0 else VolumeUnit.ML


# --------------------------------------------------------------------------- framing


def crc16_xmodem(data: bytes) -> int:
    return binascii.crc_hqx(data, 0)


def encode_basic(command: str) -> bytes:
    return command.encode("ascii") + b"\r"


def encode_safe(data: bytes) -> bytes:
    """``STX length data CRC_hi CRC_lo ETX`` with length = len(data) + 4."""
    if len(data) > 250:
        raise ValueError("safe-mode packet too long")
    return (
        bytes((STX, len(data) + 4)) + data + crc16_xmodem(data).to_bytes(2, "big") + bytes((ETX,))
    )


def decode_safe(packet: bytes) -> bytes:
    """Check a whole safe-mode packet and return its data. Raises ``MalformedReply``."""
    if len(packet) < 5 or packet[0] != STX or packet[-1] != ETX:
        raise MalformedReply(f"not a safe-mode packet: {packet!r}")
    if packet[1] != len(packet) - 1:
        raise MalformedReply(f"length byte {packet[1]} does not match packet {packet!r}")
    data, crc = packet[2:-3], int.from_bytes(packet[-3:-1], "big")
    if crc16_xmodem(data) != crc:
        raise MalformedReply(f"CRC mismatch in {packet!r}")
    return data


# --------------------------------------------------------------------------- replies

_REPLY_RE = re.compile(
    r"(?P<addr>\d{2})(?:A\?(?P<alarm>[RSTEO])|(?P<prompt>[IWSPTUX]))(?P<data>.*)", re.S
)


@dataclass(frozen=True, slots=True)
class PumpReply:
    """One parsed reply. ``t_mono_s`` is when its last byte reached the host."""

    address: int
    status: PumpStatus | None
    alarm: PumpAlarm | None
    data: str
    t_mono_s: float = 0.0

    @property
    def error_code(self) -> str | None:
        """The code after ``?`` when the pump refused the command, else None."""
        return self.data[1:] if self.data.startswith("?") else None


def parse_reply(text: str, t_mono_s: float = 0.0) -> PumpReply:
    """Parse the data of a reply (without STX/ETX or safe-mode framing)."""
    match = _REPLY_RE.fullmatch(text)
    if match is None:
        raise MalformedReply(f"unparseable reply {text!r}")
    alarm = match["alarm"]
    prompt = match["prompt"]
    reply = PumpReply(
        address=int(match["addr"]),
        status=PumpStatus(prompt) if prompt else None,
        alarm=PumpAlarm(alarm) if alarm else None,
        data=match["data"],
        t_mono_s=t_mono_s,
    )
    code = reply.error_code
    if code is not None and code not in ERROR_CODES:
        raise MalformedReply(f"unknown error code in reply {text!r}")
    return reply


_NUMBER_UNIT_RE = re.compile(r"(\d+\.\d*|\.\d+)([A-Z]{2})")
_DIS_RE = re.compile(r"I(\d+\.\d*)W(\d+\.\d*)(UL|ML)")
_VERSION_RE = re.compile(r"NE(\d+)(?:X(\d*))?V(\d+)\.(\d+)")


def parse_number(text: str) -> float:
    if not re.fullmatch(r"\d+\.\d*|\.\d+|\d+", text):
        raise MalformedReply(f"not a pump number: {text!r}")
    return float(text)


def parse_rate(text: str) -> tuple[float, RateUnit]:
    match = _NUMBER_UNIT_RE.fullmatch(text)
    if match is None or match[2] not in RateUnit._value2member_map_:
        raise MalformedReply(f"not a rate: {text!r}")
    return float(match[1]), RateUnit(match[2])


def parse_volume(text: str) -> tuple[float, VolumeUnit]:
    match = _NUMBER_UNIT_RE.fullmatch(text)
    if match is None or match[2] not in VolumeUnit._value2member_map_:
        raise MalformedReply(f"not a volume: {text!r}")
    return float(match[1]), VolumeUnit(match[2])


def parse_dispensed(text: str) -> tuple[float, float]:
    """``I<infused>W<withdrawn><units>`` to (infused_ml, withdrawn_ml)."""
    match = _DIS_RE.fullmatch(text)
    if match is None:
        raise MalformedReply(f"not a dispensed-volume reply: {text!r}")
    scale = VolumeUnit(match[3]).ml_per_unit
    return float(match[1]) * scale, float(match[2]) * scale


def parse_version(text: str) -> tuple[int, int, int]:
    """``NE1000V3.928`` to (model, major, minor)."""
    match = _VERSION_RE.fullmatch(text)
    if match is None:
        raise MalformedReply(f"not a firmware version: {text!r}")
    return int(match[1]), int(match[3]), int(match[4])
