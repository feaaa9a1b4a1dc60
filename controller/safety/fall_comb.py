"""A fast fall of the line pressure, seen with breathing and heartbeat both cancelled.

When the needle tract opens (tissue cracking, drug flowing back along the needle) the line
pressure starts to fall slowly: 0.5 mmHg in the first 0.2 s, 2.5 mmHg by 0.5 s, 7 mmHg by
1 s at 1 mL/min. Breathing (several mmHg) and the heartbeat (1-2 mmHg) swing as much in
that time, so a test on the pressure level (the downward CUSUM) must wait until the fall
is larger than both. But both repeat, and a fall does not. ``FallComb`` learns the
breathing period P and the heart period H at rest and runs the double comb

    d(t) = s(t) - s(t - H) - s(t - P) + s(t - P - H)

on the 10 ms block medians smoothed over 0.1 s (s). Any signal repeating at P or at H
cancels, and so does any straight-line trend (tissue filling up); a fall D that started
less than H ago shows in full, d = -D, with only the smoothing's 50 ms of lag. After H it
shows as the fall over the last H, which a tract that keeps opening still makes large.

Irregularity (a breath longer than the last, a beat early) leaves a residue that swings
both ways, and a few seconds at rest hold too few breaths to show it. The comb therefore
listens for a breath after the line levels off before it tests, and its limit is
twice the largest swing of d either way seen so far (``SwingMemory``), counted only once
1.5 s old so that a fall being caught cannot raise its own limit; never below twice what
d did at rest plus 1 mmHg, nor below 2.5 mmHg. What the listening breath saw counts in full
the moment it ends: the population's normal #92 (deep irregular breathing) swung d to -8 mmHg
in that breath's last second and was then tested against 3.9 mmHg, a false leak.

A handling spike jumps by several mmHg in 20 ms, far faster than any line or physiology
moves (a 10 mmHg breath at 0.3 Hz changes 0.4 mmHg in 20 ms): every value within
``HOLD_S`` of such a jump is marked, and d is not tested while any of its four terms is.

A rise is the occlusion tests' business, and a fall as fast as a spike (a Luer coming
apart) the collapse test's: this test looks down, at slow falls. O(1) per
block on the control path with preallocated rings; the heart period is found once per
fill, with numpy, on at most 10 s of rest.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from controller.safety.rhythms import heart_period
from controller.safety.swing import SwingMemory, limit_mmhg
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import Verdict, VerdictKind

FloatArray = npt.NDArray[np.float64]
SMOOTH_BLOCKS = 10  # 0.1 s mean
JUMP_MMHG = 3.0  # in 20 ms: seven times a 10 mmHg breath's fastest swing
HOLD_S = 0.4  # a handling spike has decayed by then
SETTLE_S = 1.5  # after the line levelled off, a full comb of history and ...
SETTLE_BREATHS = 1  # ... this many breaths, whose swing sets the limit
MIN_LIMIT_MMHG = 2.5
SWING_DELAY_CHUNKS = 3  # the swing counts once 1.5 s old, after any fall was caught
PERSIST_S = 0.05
REFERENCE_TAU_S = 2.0


def comb(smooth: FloatArray, lags: tuple[int, ...]) -> FloatArray:
    """The comb applied to a whole array (the rest analysis); lags: (H, P)."""
    y = smooth.copy()
    for lag in lags:
        y = y[lag:] - y[:-lag]
    return y


def _any_term(held: npt.NDArray[np.bool_], lags: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """For each value of ``comb(x, lags)``: is any of the x it was made of held?"""
    out = held
    for lag in lags:
        out = out[lag:] | out[:-lag]
    return out


class FallComb:
    def __init__(self) -> None:
        self.heart = 0  # blocks; 0 = no heartbeat found
        self.breath = 0
        self.lags: tuple[int, ...] = ()
        self.rest_limit_mmhg = MIN_LIMIT_MMHG
        self.deviation = 0.0
        self.d = 0.0
        self._hold_until = -math.inf
        self._valid = False
        self._reset_rings(1)

    def _reset_rings(self, size: int) -> None:
        self._size = size
        self._values = [0.0] * size
        self._held = [True] * size
        self._smooth = [0.0] * SMOOTH_BLOCKS
        self._sum = 0.0
        self._count = 0
        self._reference: float | None = None
        self._since = -1.0
        self._learnt = False  # the listening breath's swing is counted in full
        self.swing = SwingMemory(SWING_DELAY_CHUNKS)

    @property
    def span(self) -> int:
        """How many blocks back the comb reaches."""
        return sum(self.lags)

    @property
    def swing_mmhg(self) -> float:
        return self.swing.swing_mmhg

    @property
    def limit_mmhg(self) -> float:
        return limit_mmhg(self.rest_limit_mmhg, self.swing.swing_mmhg)

    def held(self, t: float, rise_mmhg: float) -> bool:
        """Whether a block at rest is near a spike (``rise_mmhg``: how far the block medians
        moved in the last 20 ms, the supervisor's); the rest keeps the mark for ``learn``."""
        return self._jumped(t, rise_mmhg)

    def _jumped(self, t: float, rise_mmhg: float) -> bool:
        """True while a spike's jump (up or down) is under ``HOLD_S`` old."""
        if abs(rise_mmhg) > JUMP_MMHG:
            self._hold_until = t + HOLD_S
        return t < self._hold_until

    def learn(self, rest: FloatArray, held: npt.NDArray[np.bool_], breath_blocks: int) -> bool:
        """The comb's lags and rest limit from the rest before the first fill (block
        medians, trend removed, spike marks); False: the heart or the breathing has no
        rhythm there, and the comb stays silent for this injection."""
        self.breath = breath_blocks
        self.heart = heart_period(rest, held)
        # both rhythms or none: with one left in, the other's irregularity is uncancelled
        # (a 10 mmHg breath varying by 15 % raised a false leak through the breath lag
        # alone), and the downward CUSUM is as quick as a single comb
        self.lags = (self.heart, self.breath) if self.heart and self.breath else ()
        self.rest_limit_mmhg = self._rest_limit(rest, held)
        self.restart()
        return bool(self.lags)

    def restart(self) -> None:
        """A new fill: the lags and rest limit are kept, the history is not."""
        self._reset_rings(self.span + 1)

    def _rest_limit(self, rest: FloatArray, held: npt.NDArray[np.bool_]) -> float:
        """Twice the largest swing of d at rest (+1 mmHg), leaving out spiked terms."""
        if not self.lags or rest.size < self.span + 2 * SMOOTH_BLOCKS:
            return MIN_LIMIT_MMHG
        window = np.ones(SMOOTH_BLOCKS)
        smooth = np.convolve(rest, window / SMOOTH_BLOCKS, mode="valid")
        spiked = np.convolve(held.astype(np.float64), window, mode="valid") > 0
        d = comb(smooth, self.lags)
        d = d[~_any_term(spiked, self.lags)]
        if d.size < 10:
            return MIN_LIMIT_MMHG
        return max(MIN_LIMIT_MMHG, 2.0 * float(np.max(np.abs(d - np.median(d)))) + 1.0)

    # ------------------------------------------------------------ the control path
    def update(self, t: float, block_mmhg: float, rise_mmhg: float) -> None:
        """One 10 ms block median while infusing (``rise_mmhg`` as for ``add_rest``)."""
        jumped = self._jumped(t, rise_mmhg)
        if not self.lags:
            return
        k = self._count
        slot = k % SMOOTH_BLOCKS
        self._sum += block_mmhg - self._smooth[slot]
        self._smooth[slot] = block_mmhg
        here = k % self._size
        self._values[here] = self._sum / SMOOTH_BLOCKS
        self._held[here] = jumped or k < SMOOTH_BLOCKS
        self._count = k + 1
        self._valid = k >= self.span and self._combine(k)

    def _combine(self, k: int) -> bool:
        """d at block k from the ring; False if any of its terms is held."""
        size, values, held = self._size, self._values, self._held
        h, p = self.lags
        idx = (k % size, (k - h) % size, (k - p) % size, (k - h - p) % size)
        self.d = values[idx[0]] - values[idx[1]] - values[idx[2]] + values[idx[3]]
        return not (held[idx[0]] or held[idx[1]] or held[idx[2]] or held[idx[3]])

    def on_block(self, t: float, monitoring: bool, t_levelled: float) -> Verdict | None:
        since_levelled_s = t - t_levelled - self.span * BLOCK_S - SETTLE_S
        if not (self.lags and monitoring) or since_levelled_s < 0:
            self._reference = None
            return None
        if not self._valid:
            self._since = -1.0
            return None
        if self._reference is None:
            self._reference = self.d
        self.deviation = self.d - self._reference
        self._follow()
        if since_levelled_s < SETTLE_BREATHS * self.breath * BLOCK_S:
            self._since = -1.0
            self._learnt = False
            return None
        if not self._learnt:
            self.swing.count_all()
            self._learnt = True
        if self.deviation >= -self.limit_mmhg:
            self._since = -1.0
            return None
        if self._since < 0:
            self._since = t
        if t - self._since < PERSIST_S:
            return None
        detail = (
            f"pressure fell {-self.deviation:.1f} mmHg with breathing and heartbeat cancelled "
            "while infusing: drug leaving the line (backflow along the tract, a leak)"
        )
        return Verdict(VerdictKind.LEAK, detail, t, {"comb_mmhg": self.deviation})

    def _follow(self) -> None:
        """The reference follows slow offsets. The swing (both ways) sets the limit once it
        is 1.5 s old, so a fall being caught now never raises its own limit."""
        deviation = self.deviation
        if abs(deviation) < self.limit_mmhg / 2 and self._reference is not None:
            self._reference += deviation * BLOCK_S / REFERENCE_TAU_S
        self.swing.add(abs(deviation))
