"""Values the transducer client hands out: the counts-to-mmHg scale and device events."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from firmware_bridge import messages as m

MIN_FULL_SCALE_MMHG = 1000.0  # the highest pressure limit a user may set must be on scale
MIN_RESOLUTION_COUNTS_PER_MMHG = 1.0


def check_nominal_gain(gain_counts_per_mmhg: float, adc_bits: int) -> str | None:
    """Why a bridge's HELLO gain is unusable, or None: not a positive number, too coarse to
    resolve a mmHg, or so fine that the highest pressure limit is off the ADC's scale."""
    if not (math.isfinite(gain_counts_per_mmhg) and gain_counts_per_mmhg > 0):
        return f"nominal gain {gain_counts_per_mmhg} counts/mmHg is not a positive number"
    if gain_counts_per_mmhg < MIN_RESOLUTION_COUNTS_PER_MMHG:
        return f"nominal gain {gain_counts_per_mmhg:g} counts/mmHg resolves less than a mmHg"
    full_scale_mmhg = 2 ** (adc_bits - 1) / gain_counts_per_mmhg
    if full_scale_mmhg < MIN_FULL_SCALE_MMHG:
        return (
            f"nominal gain {gain_counts_per_mmhg:g} counts/mmHg on a {adc_bits}-bit ADC is "
            f"a full scale of {full_scale_mmhg:.0f} mmHg, under {MIN_FULL_SCALE_MMHG:.0f}"
        )
    return None


@dataclass(frozen=True, slots=True)
class Scale:
    """Counts to mmHg: ``pressure_mmhg = (raw - zero_counts) / gain_counts_per_mmhg``."""

    zero_counts: float
    gain_counts_per_mmhg: float
    source: str
    calibrated: bool = False  # the gain comes from a calibration, not the bridge's HELLO

    def __post_init__(self) -> None:
        """A zero or gain that is not a finite number, or a gain that is not positive,
        would make every pressure NaN, infinite or inverted: an over-pressure that never
        trips. Refused here, whoever builds the scale (HELLO, a calibration file, a zero)."""
        if not math.isfinite(self.zero_counts):
            raise ValueError(f"{self.source}: zero {self.zero_counts} counts is not a number")
        if not (math.isfinite(self.gain_counts_per_mmhg) and self.gain_counts_per_mmhg > 0):
            raise ValueError(
                f"{self.source}: gain {self.gain_counts_per_mmhg} counts/mmHg is not a "
                "positive number"
            )

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
