"""Pressure now against pressure one breath ago: the occlusion test with breathing cancelled.

Breathing is the largest artifact in the line (a few mmHg at 0.2-0.3 Hz) and at low rates
it swings about as fast as a blocked line climbs (3.4 mmHg/s at 0.2 mL/min with a 5 mL
syringe), so the CUSUM on the pressure level must wait for a rise larger than a breath
before it can speak. But breathing repeats and a blockage does not. ``BreathComb`` learns
the breathing period P at rest (the autocorrelation peak of the rest pressure between 2
and 8 s, accepted only if the pressure half a period later is anti-correlated, so a drift
is never taken for a rhythm), then compares the pressure, smoothed over 0.4 s, with its
value one period earlier: y(t) = m(t) - m(t - P). Breathing cancels; the heartbeat, which
does not repeat at the breathing period, is halved by the smoothing; a steady line gives
y near the slow rise of tissue filling over one period, which a reference follows; a
blockage makes y climb at Q/C from its onset.

Upward only. A downward test on y would have to let its reference follow the end of the
start transient (y falls as the line levels off) and then sees a leak no sooner than the
downward CUSUM does; measured in ``docs/performance.md``.

Everything on the control path is O(1) with preallocated rings; the period is found once
per fill, at the start, with numpy on at most 10 s of rest pressure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from controller.safety.lagged_rise import SMOOTH_BLOCKS, LaggedRise
from controller.safety.rhythms import breathing_period
from controller.safety.swing import SwingMemory, limit_mmhg
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import Verdict, VerdictKind

FloatArray = npt.NDArray[np.float64]
REFERENCE_TAU_S = 2.0
SETTLE_S = 2.0  # after the line levelled off and one period of history
PERSIST_S = 0.1
MIN_LIMIT_MMHG = 4.0
EITHER_WAY_DELAY_CHUNKS = 6  # 3 s: an occlusion has been caught by then
SETTLE_BREATHS = 1  # listened to after SETTLE_S before testing: their swing sets the limit


def rest_deviation(rest_mmhg: Sequence[float] | FloatArray, period: int) -> float:
    """How far y strays at rest: breathing's irregularity, heartbeat and noise."""
    x = np.asarray(rest_mmhg, dtype=np.float64)
    smooth = np.convolve(x, np.ones(SMOOTH_BLOCKS) / SMOOTH_BLOCKS, mode="valid")
    if smooth.size <= period + 10:
        return MIN_LIMIT_MMHG
    y = smooth[period:] - smooth[:-period]
    return float(np.max(np.abs(y - np.median(y))))


class BreathComb:
    def __init__(self) -> None:
        self.period = 0  # blocks; 0 = no rhythm found, the comb stays silent
        self.correlation = 0.0
        self.rest_limit_mmhg = MIN_LIMIT_MMHG
        self.rest_deviation_mmhg = 0.0  # how far y strayed at rest (what cancelling leaves)
        self.downward = SwingMemory()
        self.either_way = SwingMemory(EITHER_WAY_DELAY_CHUNKS)
        self.y = 0.0
        self.deviation = 0.0
        self._valid = False
        self._lagged: LaggedRise | None = None
        self._reference: float | None = None
        self._since = -1.0

    @property
    def period_s(self) -> float:
        return self.period * BLOCK_S

    @property
    def slope_swing_mmhg_s(self) -> float:
        """How far the slope over a breath (``slope_mmhg_s``) strayed at rest: breathing's
        irregularity, pulse and noise left by the cancelling (0 without a rhythm)."""
        return self.rest_deviation_mmhg / self.period_s if self.period else 0.0

    @property
    def swing_mmhg(self) -> float:
        return max(self.downward.swing_mmhg, self.either_way.swing_mmhg)

    @property
    def limit_mmhg(self) -> float:
        return limit_mmhg(self.rest_limit_mmhg, self.swing_mmhg)

    def learn(self, rest_mmhg: Sequence[float] | FloatArray) -> bool:
        """Find the rhythm and the rest limit from the rest pressure before this fill.

        A few seconds at rest hold one or two breaths: too few to see how irregular the
        breathing is. That is learnt while infusing (``SwingMemory``): from the comb's
        downward swings at once (a blockage only ever pushes it up), and from its swings
        either way once 3 s old (by then a blockage has been caught)."""
        found = breathing_period(rest_mmhg)
        self.period = found[0] if found else 0
        self.correlation = found[1] if found else 0.0
        if found:
            deviation = rest_deviation(rest_mmhg, self.period)
            self.rest_deviation_mmhg = deviation
            self.rest_limit_mmhg = max(MIN_LIMIT_MMHG, 1.5 * deviation + 1.5)
        self.restart()
        return found is not None

    def restart(self) -> None:
        """A new fill of the same injection: the rhythm and limit are kept, the history is
        not (the line between fills was not at rest)."""
        self.downward = SwingMemory()
        self.either_way = SwingMemory(EITHER_WAY_DELAY_CHUNKS)
        self._lagged = LaggedRise(self.period) if self.period else None
        self._valid = False
        self._reference = None
        self._since = -1.0

    def update(self, filtered_mmhg: float, held: bool) -> None:
        """One 10 ms block; ``held``: a handling spike is in the smoothing window."""
        if self._lagged is None:
            return
        self._valid = self._lagged.add(filtered_mmhg, held)
        self.y = self._lagged.y

    @property
    def slope_mmhg_s(self) -> float | None:
        """The mean slope over the last breath (breathing cancelled); None if not valid."""
        return self.y / self.period_s if self.period and self._valid else None

    def on_block(self, t: float, monitoring: bool, t_levelled: float) -> Verdict | None:
        since_settled_s = t - t_levelled - self.period_s - SETTLE_S
        if not (self.period and monitoring) or since_settled_s < 0:
            self._reference = None
            return None
        if not self._valid:
            self._since = -1.0
            return None
        if self._reference is None:
            self._reference = self.y
        self.deviation = self.y - self._reference
        if self.deviation < self.limit_mmhg / 2:
            self._reference += (self.y - self._reference) * BLOCK_S / REFERENCE_TAU_S
        self.downward.add(max(0.0, -self.deviation))
        self.either_way.add(abs(self.deviation))
        listening = since_settled_s < SETTLE_BREATHS * self.period_s
        if listening or self.deviation <= self.limit_mmhg:
            self._since = -1.0
            return None
        if self._since < 0:
            self._since = t
        if t - self._since < PERSIST_S:
            return None
        detail = (
            f"pressure {self.deviation:.1f} mmHg higher than one breath ({self.period_s:.1f} s) "
            "earlier and still climbing: the line is blocked"
        )
        return Verdict(VerdictKind.OCCLUSION, detail, t, {"comb_mmhg": self.deviation})
