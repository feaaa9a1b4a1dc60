"""The pressure's rise over one breath: y = m(t) - m(t - lag), m a short running mean.

Breathing repeats, so in y it cancels (what its irregularity leaves is the residue the
tests' limits stand on); a blockage climbs and does not cancel. The breathing comb
(``breath_comb.py``, after the line levels) and the first fill's breath rise
(``breath_rise.py``, from the start) both test this one quantity: the comb on the 250 ms
running median, the breath rise on the 10 ms block medians. A mean that holds a block its
caller marks ``held`` (a handling spike; the caller decides for how long) is no use now,
nor one breath later when it is the lagged end of y; neither is a mean that reaches back
before the first block (the rest, or nothing). O(1) per block, preallocated rings.
"""

from __future__ import annotations

SMOOTH_BLOCKS = 40  # 0.4 s of 10 ms blocks: noise and most of a pulse averaged


class LaggedRise:
    """y = m(k) - m(k - lag) over the values added, m the mean of the last ``smooth``."""

    def __init__(self, lag_blocks: int, smooth_blocks: int = SMOOTH_BLOCKS) -> None:
        if lag_blocks < smooth_blocks:
            raise ValueError(f"a lag of {lag_blocks} blocks is shorter than its mean")
        self.lag = lag_blocks
        self.y = 0.0
        self._n = smooth_blocks
        self._smooth = [0.0] * smooth_blocks
        self._sum = 0.0
        self._means = [0.0] * (lag_blocks + 1)
        self._held = [True] * (lag_blocks + 1)
        self._count = 0

    def add(self, value: float, held: bool) -> bool:
        """One block; True when ``y`` is valid: neither mean holds a held block, and the
        lagged one is not among the first ``smooth`` (counted as reaching before the first)."""
        k = self._count
        slot = k % self._n
        self._sum += value - self._smooth[slot]
        self._smooth[slot] = value
        size = self.lag + 1
        here, lagged = k % size, (k - self.lag) % size
        mean = self._sum / self._n
        self._means[here] = mean
        self._held[here] = held or k < self._n
        self._count = k + 1
        self.y = mean - self._means[lagged]
        return k >= self.lag and not (held or self._held[lagged])
