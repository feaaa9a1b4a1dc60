"""A blocked line at a high rate, seen on the 10 ms blocks by a CUSUM no artifact can feed.

Where a blocked line climbs many times faster than breathing swings the pressure, a climb
at a good fraction of Q/C is something only a blockage keeps up. The other tests pay for
artifacts they need not fear there: the up CUSUM runs on the 250 ms running median (125 ms
behind) with a limit of a whole envelope, and the short-slope test on a window up to a
heartbeat long (0.5-1 s of a noisy or pulsing line). Population occlusion@5 plants found
later than 0.3 s lost the time there, not in the physics (``docs/performance.md``).

``FastClimb`` is a CUSUM on the block medians averaged over 50 ms (25 ms behind; the mean
of five halves the noise of one median). Its drift is the line's own slope plus the larger
of 0.3 Q/C and the steepest climb of a breath a fifth deeper than the rest's envelope and
a fifth shorter than the rhythm learnt there (``breath_climb_mmhg_s``); where that leaves
less than ``MIN_NET_OF_FULL`` of Q/C to accumulate, the test stands aside. Its limit is what the
same CUSUM at the same drift did on the rest's blocks (noise and pulse; spikes left out):
twice that and 1 mmHg, at least ``MIN_LIMIT_MMHG``. A handling spike (a jump in 20 ms of 4
mmHg more than a blocked line climbs in that time; a downward one climbs back as it decays)
empties it and holds it for ``HOLD_S``; a smaller one cannot reach the limit, which is never
under that jump. A line blocked at 140 mmHg/s climbs 2.8 mmHg in 20 ms, which noise makes
4 now and then: a fixed 4 mmHg held the test deaf through population occlusion@5 #1.

The line's own slope is its 4 s slope, during the start and after: a healthy start's slope
only falls (a sum of decaying exponentials) and a levelled line's holds, so it never climbs
back above where it stood two seconds ago, which is what the 4 s slope says; a blockage
climbs at Q/C at once. The test waits until the 4 s slope spans the infusion alone and
until the start has slowed enough to leave ``MIN_NET_OF_FULL`` of Q/C. The limit is learnt
at the least drift of the fill (no slope): a larger drift only forgives more.
O(1) per block; the rest is read once per fill, when the test first applies.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt

from controller.safety.persistence import Persistence
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import Verdict, VerdictKind

FloatArray = npt.NDArray[np.float64]
DRIFT_OF_FULL = 0.3  # at least this much of Q/C above the line's slope is forgiven ...
# ... and at least a breath's steepest climb, pi x peak-to-peak / period, for a breath a
# fifth deeper than the deepest at rest and a fifth shorter than the rhythm learnt there
# (breathing varies by 10-20 % from breath to breath); without a rhythm, 2 s (30 a minute)
BREATH_DEEPER = 1.2
BREATH_SHORTER = 0.8
SHORTEST_BREATH_S = 2.0
MIN_NET_OF_FULL = 0.4  # of Q/C left over the drift, or the test stands aside
LOWEST_FULL_MMHG_S = 25.0  # no test on a line blocked slower than this (line_model's)
SMOOTH_BLOCKS = 5
JUMP_MMHG = 4.0  # in 20 ms beyond what a blocked line climbs in that time (x 1.25): a spike
JUMP_OF_CLIMB = 1.25
HOLD_S = 0.4  # a handling spike has decayed by then
MIN_LIMIT_MMHG = 3.0
LIMIT_MARGIN_MMHG = 1.0
PERSIST_S = 0.03


def climb_step(cusum_mmhg: float, step_mmhg: float, drift_mmhg_s: float) -> float:
    """One block of the CUSUM, shared by the live test and the rest analysis whose
    excursion sets its limit, so the two can never count differently."""
    return max(0.0, cusum_mmhg + step_mmhg - drift_mmhg_s * BLOCK_S)


def smoothed(blocks: FloatArray) -> FloatArray:
    """The blocks' running mean over ``SMOOTH_BLOCKS``, as live."""
    window = np.ones(SMOOTH_BLOCKS) / SMOOTH_BLOCKS
    return np.convolve(blocks, window, mode="valid")


def rest_excursion_mmhg(
    blocks: FloatArray, held: npt.NDArray[np.bool_], drift_mmhg_s: float
) -> float:
    """The largest the CUSUM climbed on the rest's block medians at this drift; a step
    near a held (spiked) block empties it, as live."""
    if blocks.size < SMOOTH_BLOCKS + 2 or held.size != blocks.size:
        return 0.0
    values = smoothed(blocks)
    near_spike = np.convolve(held.astype(np.float64), np.ones(SMOOTH_BLOCKS), mode="valid") > 0
    steps = np.diff(values)
    skip = near_spike[1:] | near_spike[:-1]
    cusum = top = 0.0
    for step, spiked in zip(steps.tolist(), skip.tolist(), strict=True):
        cusum = 0.0 if spiked else climb_step(cusum, step, drift_mmhg_s)
        top = max(top, cusum)
    return top


def breath_climb_mmhg_s(envelope_mmhg: float, breath_period_s: float) -> float:
    """The steepest a breath climbs: one a fifth deeper than the rest's envelope and a fifth
    shorter than its rhythm (0: none found, then a breath of 2 s)."""
    period_s = max(SHORTEST_BREATH_S, BREATH_SHORTER * breath_period_s)
    return BREATH_DEEPER * math.pi * envelope_mmhg / period_s


def fast_drift_mmhg_s(
    full_mmhg_s: float, slope_mmhg_s: float, envelope_mmhg: float, breath_period_s: float = 0.0
) -> float:
    """What the CUSUM forgives: the line's own slope and the larger of a fraction of Q/C
    and a deep breath's steepest climb."""
    breath = breath_climb_mmhg_s(envelope_mmhg, breath_period_s)
    return max(0.0, slope_mmhg_s) + max(DRIFT_OF_FULL * full_mmhg_s, breath)


def applies(full_mmhg_s: float, drift_mmhg_s: float) -> bool:
    """A blocked line would climb well past the drift."""
    return full_mmhg_s >= LOWEST_FULL_MMHG_S and (
        full_mmhg_s - drift_mmhg_s >= MIN_NET_OF_FULL * full_mmhg_s
    )


class FastClimb:
    def __init__(self) -> None:
        self.limit_mmhg: float | None = None  # learnt when the test first applies in a fill
        self._limit_drift = 0.0
        self.cusum_mmhg = 0.0
        self._rest: tuple[FloatArray, npt.NDArray[np.bool_]] | None = None
        self._recent: deque[float] = deque(maxlen=SMOOTH_BLOCKS)
        self._last: float | None = None
        self._hold_until = -math.inf
        self._over = Persistence(PERSIST_S)

    def learn(self, rest_blocks: FloatArray, held: npt.NDArray[np.bool_]) -> None:
        """Keep the rest before the injection's first fill (its limit needs the drift)."""
        self._rest = (rest_blocks, held)

    def restart(self) -> None:
        """A new fill: the rest is kept, the sum and the limit are not."""
        self.limit_mmhg = None
        self.cusum_mmhg = 0.0
        self._recent.clear()
        self._last = None
        self._hold_until = -math.inf
        self._over.reset()

    def _limit(self, drift_mmhg_s: float) -> float:
        """From the rest, at this drift; again if the drift moved (C measured anew)."""
        if self.limit_mmhg is None or abs(drift_mmhg_s - self._limit_drift) > 0.05 * drift_mmhg_s:
            excursion = rest_excursion_mmhg(*self._rest, drift_mmhg_s) if self._rest else 0.0
            self.limit_mmhg = max(MIN_LIMIT_MMHG, 2.0 * excursion + LIMIT_MARGIN_MMHG)
            self._limit_drift = drift_mmhg_s
        return self.limit_mmhg

    def on_block(
        self,
        t: float,
        block_mmhg: float,
        jump_mmhg: float,
        *,
        drift_mmhg_s: float | None,
        lowest_drift_mmhg_s: float,
        full_mmhg_s: float,
    ) -> Verdict | None:
        """One block median; ``drift_mmhg_s`` None where the test does not apply (the
        start's first seconds, or a rate too low for it): the sum empties. The limit is
        what the rest did at ``lowest_drift_mmhg_s``, the least it forgives this fill."""
        self._recent.append(block_mmhg)
        mean = sum(self._recent) / len(self._recent)
        last, self._last = self._last, mean
        spike_mmhg = JUMP_MMHG + JUMP_OF_CLIMB * full_mmhg_s * 2 * BLOCK_S
        if abs(jump_mmhg) > spike_mmhg:
            self._hold_until = t + HOLD_S
        ready = len(self._recent) == SMOOTH_BLOCKS
        if drift_mmhg_s is None or last is None or not ready or t < self._hold_until:
            self.cusum_mmhg = 0.0
            self._over.reset()
            return None
        limit = max(self._limit(lowest_drift_mmhg_s), spike_mmhg)
        self.cusum_mmhg = climb_step(self.cusum_mmhg, mean - last, drift_mmhg_s)
        if not self._over.holds(t, self.cusum_mmhg > limit):
            return None
        detail = (
            f"pressure climbed {self.cusum_mmhg:.1f} mmHg beyond {drift_mmhg_s:.0f} mmHg/s in "
            "a few tenths of a second, as only a blocked line climbs at this rate"
        )
        values = {"cusum_mmhg": self.cusum_mmhg, "limit_mmhg": limit}
        return Verdict(VerdictKind.OCCLUSION, detail, t, values)
