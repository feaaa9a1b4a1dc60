"""Mettler Toledo MT-SICS (level 0) framing and reply parsing, with no I/O.

MT-SICS is line based: the host sends ``COMMAND CR LF``; the balance answers
``ID SP STATUS [SP data] CR LF``. A weight reply is ``S S`` (stable) or ``S D``
(dynamic) followed by the value right-aligned in ten characters and the unit,
for example ``S S      12.3456 g``. ``S I`` means "understood but not possible
now" (busy, or no stable weight in time), ``S +`` / ``S -`` overload and
underload. ``ES`` / ``ET`` / ``EL`` are the generic syntax, transmission and
logical errors. Kept separate from the driver so that the emulator formats
replies with the same code the driver parses, and so that Hypothesis can walk
the parser without a port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

CRLF = b"\r\n"
MAX_LINE_BYTES = 128
GRAMS_PER_UNIT = {"g": 1.0, "mg": 1e-3, "kg": 1e3}

_WEIGHT_RE = re.compile(r"^S ([SD]) +(-?\d+(?:\.\d+)?) ([a-z]+)$")
_ANSWER_RE = re.compile(r'^(I[0-9]+) A +"(.*)"$')


class BalanceError(Exception):
    """The balance answered, but not with what was asked for."""


class NotPossibleNow(BalanceError):
    """``S I`` / ``Z I``: busy, or no stable weight within the balance's own timeout."""


class OutOfRange(BalanceError):
    """Overload (``+``) or underload (``-``): the reading is not a weight."""


class CommandRejected(BalanceError):
    """``ES`` / ``ET`` / ``EL``: the balance did not understand or could not take the line."""


class Stability(Enum):
    STABLE = "S"
    DYNAMIC = "D"


@dataclass(frozen=True, slots=True)
class Weight:
    grams: float
    stable: bool


def encode_command(command: str) -> bytes:
    """``SI`` -> ``b"SI\\r\\n"``. Commands are plain ASCII without line breaks."""
    if not command or not command.isascii() or "\r" in command or "\n" in command:
        raise ValueError(f"not an MT-SICS command: {command!r}")
    return command.encode("ascii") + CRLF


def format_weight(grams: float, stable: bool, decimals: int = 5) -> str:
    """The balance's side of ``S``/``SI``: value right-aligned in ten characters, then ``g``."""
    value = f"{grams:.{decimals}f}"
    return f"S {'S' if stable else 'D'} {value:>10} g"


_GENERIC_ERRORS = {
    "ES": "syntax error: the balance does not know the command",
    "ET": "transmission error: the balance received a corrupted line",
    "EL": "logical error: the command cannot be carried out",
}


def parse_weight(line: str) -> Weight:
    """Parse the reply to ``S`` or ``SI``; raise the error the balance reported."""
    text = line.strip()
    raise_if_error(text, "S")
    match = _WEIGHT_RE.match(text)
    if match is None:
        raise BalanceError(f"not a weight reply: {text!r}")
    stability, value, unit = match.groups()
    if unit not in GRAMS_PER_UNIT:
        raise BalanceError(f"weight in unknown unit {unit!r}: {text!r}")
    return Weight(float(value) * GRAMS_PER_UNIT[unit], stability == Stability.STABLE.value)


def parse_answer(line: str, command: str) -> str:
    """Parse ``I4 A "B123456789"`` style identification replies; returns the quoted text."""
    text = line.strip()
    raise_if_error(text, command)
    match = _ANSWER_RE.match(text)
    if match is None or match.group(1) != command:
        raise BalanceError(f"not an answer to {command}: {text!r}")
    return match.group(2)


def parse_ack(line: str, command: str) -> bool:
    """Parse ``Z A`` (zeroed) or ``ZI S``/``ZI D``; returns True when done on a stable load."""
    text = line.strip()
    raise_if_error(text, command[:1])
    if text in (f"{command} A", f"{command} S"):
        return True
    if text == f"{command} D":
        return False
    raise BalanceError(f"not an answer to {command}: {text!r}")


def raise_if_error(text: str, reply_id: str) -> None:
    if text in _GENERIC_ERRORS:
        raise CommandRejected(f"{text}: {_GENERIC_ERRORS[text]}")
    if text == f"{reply_id} I":
        raise NotPossibleNow(f"{text}: the balance cannot do that now (busy or not stable)")
    if text == f"{reply_id} +":
        raise OutOfRange(f"{text}: balance overloaded (load above its capacity)")
    if text == f"{reply_id} -":
        raise OutOfRange(f"{text}: balance underloaded (pan missing or load below zero range)")
