"""Values the transducer client hands out: the counts-to-mmHg scale and device events."""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class BridgeEvent:
    """Something the controller must know at once. ``kind`` is one of:
    trip, link_lost, link_restored, samples_lost, status, rebooted, log."""

    kind: str
    t_mono_s: float
    detail: str
    trip: m.Trip | None = None
    flags: m.StatusFlag | None = None
