"""A blocked line during the first fill: the rise over the last breath climbs again.

On the first fill the line's slope only falls: its start is a positive sum of decaying
exponentials (an RC network's step response, ``start_shape.py``) and once levelled it
holds, tissue creep included. So y(t) = m(t) - m(t - P), the pressure's rise over the last
breath (m a 0.4 s mean of the 10 ms block medians, P the breathing period learnt at rest;
``lagged_rise.py``, shared with the comb),
never climbs: dy/dt = s(t) - s(t - P) <= 0. Breathing cancels in y as in the breathing
comb (``breath_comb.py``); what its irregularity, the pulse and noise leave swings y both
ways (over the population, by up to 0.65 of the rest's artifact envelope). A blockage
makes y climb at once, at Q/C less the slope one breath earlier. ``BreathRise`` tests
how far y stands above its own mean over the breath before (a falling y never does; the
residue swings about that mean, a blockage leaves it at once) against a limit that stands
on the rest's artifact envelope.

Why it exists: the other occlusion tests of a low-rate start wait for the line to level
(the up CUSUM, the comb) or for a 4 s slope to climb a fraction of the way back to Q/C;
population occlusion@1 plants blocked during their start were found 1.8-4.9 s after the
onset (session 32, ``docs/performance.md``). This test runs from the first moment y spans
the fill alone, through the start and after the levelling.

Without a rhythm at rest (shallow breathing) P is ``NO_RHYTHM_LAG_S``: any lag cancels
what is not there. First fill only: a later fill starts from a line still decaying from
the last, whose slope can rise as that decay dies away. O(1) per block.
"""

from __future__ import annotations

from collections import deque

from controller.safety.lagged_rise import SMOOTH_BLOCKS, LaggedRise
from controller.safety.persistence import Persistence
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import Verdict, VerdictKind

NO_RHYTHM_LAG_S = 3.0
PERSIST_S = 0.1
# The limit: this much of the rest's artifact envelope (peak to peak) plus an offset. Over
# the population's healthy first fills the statistic reached at most 0.65 of the envelope
# beyond the offset (normal #481, deep irregular breathing); the margin is 1.3 times that
# (bench/breath_rise_margin.py, docs/performance.md session 32). The same statistic
# measured on the rest itself was no guide: 10 s at rest hold a breath or two.
ENVELOPE_MARGIN = 0.85
OFFSET_MMHG = 2.0
MIN_LIMIT_MMHG = 4.0


class TrailingMean:
    """The mean of the values added over the last ``window`` indices; O(1) per value."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._values: deque[tuple[int, float]] = deque()
        self._sum = 0.0

    def add(self, index: int, value: float) -> float:
        self._values.append((index, value))
        self._sum += value
        while self._values[0][0] <= index - self.window:
            self._sum -= self._values.popleft()[1]
        return self._sum / len(self._values)


class BreathRise:
    """The first fill's rise over the last breath may only fall; climbing is a blockage."""

    def __init__(self) -> None:
        self.lag = round(NO_RHYTHM_LAG_S / BLOCK_S)
        self.limit_mmhg = MIN_LIMIT_MMHG
        self.rise_mmhg = 0.0
        self._armed = False
        self._count = 0
        self._spike_k = -(10**9)
        self._lagged = LaggedRise(self.lag)
        self._mean = TrailingMean(self.lag)
        self._climbing = Persistence(PERSIST_S)

    def learn(self, period_blocks: int, envelope_mmhg: float) -> None:
        """The first fill starts: the lag is the breathing period learnt at rest (blocks;
        0: none found), the limit stands on the rest's artifact envelope (peak to peak)."""
        self.lag = period_blocks or round(NO_RHYTHM_LAG_S / BLOCK_S)
        self.limit_mmhg = max(MIN_LIMIT_MMHG, ENVELOPE_MARGIN * envelope_mmhg + OFFSET_MMHG)
        self._count = 0
        self._spike_k = -(10**9)
        self._lagged = LaggedRise(self.lag)
        self._mean = TrailingMean(self.lag)
        self._climbing.reset()
        self.rise_mmhg = 0.0
        self._armed = True

    def disarm(self) -> None:
        """A later fill (or the first has ended): the test does not apply."""
        self._armed = False
        self._climbing.reset()

    def update(self, block_mmhg: float, held: bool) -> bool:
        """One 10 ms block; ``held``: a handling spike is on the line now (it stays in the
        mean for as long as the mean spans). True when y is valid (both of its means free
        of spikes and of the rest before the fill)."""
        if not self._armed:
            return False
        k = self._count
        self._count = k + 1
        if held:
            self._spike_k = k
        spiky = k - self._spike_k < SMOOTH_BLOCKS  # the spike is still in the mean
        if not self._lagged.add(block_mmhg, spiky):
            return False
        y = self._lagged.y
        self.rise_mmhg = y - self._mean.add(k, y)
        return True

    def on_block(self, t: float, block_mmhg: float, held: bool) -> Verdict | None:
        valid = self.update(block_mmhg, held)
        if not self._climbing.holds(t, valid and self.rise_mmhg > self.limit_mmhg):
            return None
        period_s = self.lag * BLOCK_S
        detail = (
            f"pressure's rise over the last {period_s:.1f} s (breathing cancelled) climbed "
            f"{self.rise_mmhg:.1f} mmHg above its mean over the breath before (limit "
            f"{self.limit_mmhg:.1f}), where a healthy first fill's only slows: the line is blocked"
        )
        values = {"rise_mmhg": self.rise_mmhg, "limit_mmhg": self.limit_mmhg}
        return Verdict(VerdictKind.OCCLUSION, detail, t, values)
