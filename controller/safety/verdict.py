"""What a detector decides: a verdict of one kind, with its reason in words and numbers."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class VerdictKind(enum.StrEnum):
    """The alarm kinds of the interface contract, and the controller's own failures."""

    OCCLUSION = "occlusion"  # downstream blockage: the line keeps climbing
    OVER_PRESSURE = "over_pressure"  # the absolute limit
    LEAK = "leak"  # collapse, below what the needle alone must show, or drug leaving the line
    SENSOR_FAULT = "sensor_fault"  # open, saturated, stuck, implausible, noisy
    LINK_LOST = "link_lost"  # a device stopped answering or streaming
    PUMP_FAULT = "pump_fault"  # pump alarm, stall, delivery disagreeing with the command
    SOFTWARE_FAULT = "software_fault"  # an exception on the control path, a task that died
    RECORDING_FAILED = "recording_failed"  # the record cannot be written (ends "interrupted")


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: VerdictKind
    detail: str
    t_mono_s: float
    values: dict[str, float] = field(default_factory=dict)
