"""Values the transducer client hands out: the counts-to-mmHg scale and device events."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from firmware_bridge import messages as m


@dataclass(frozen=True, slots=True)
class Scale:
    """Counts to mmHg: ``pressure_mmhg = (raw - zero_counts) / gain_counts_per_mmhg``."""

    zero_counts: float
    gain_counts_per_mmhg: float
    source: str
    calibrated: bool = False  # the gain comes from a calibration, not the bridge's HELLO

    def to_mmhg(self, raw: float) -> float:
        return (raw - self.zero_counts) / self.gain_counts_per_mmhg

    def to_raw(self, pressure_mmhg: float) -> float:
        return self.zero_counts + pressure_mmhg * self.gain_counts_per_mmhg


class BridgeEventKind(enum.StrEnum):
    TRIP = "trip"  # the bridge asserted its interlock (TRIP packet)
    LINK_LOST = "link_lost"  # no sample (streaming) or no packet (idle) in time, or port lost
    LINK_RESTORED = "link_restored"  # samples flow again after a link_lost
    SAMPLES_LOST = "samples_lost"  # a gap (or a restart) in the stream's sample index
    STATUS = "status"  # the STATUS flags changed
    REBOOTED = "rebooted"  # HELLO unasked or BOOTED again: the bridge lost its state
    LOG = "log"  # the bridge's own LOG line
    LISTENER_FAILED = "listener_failed"  # a sample or event listener raised (ours: a bug)


@dataclass(frozen=True, slots=True)
class BridgeEvent:
    """Something the controller must know at once."""

    kind: BridgeEventKind
    t_mono_s: float
    detail: str
    trip: m.Trip | None = None
    flags: m.StatusFlag | None = None
