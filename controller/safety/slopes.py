"""Slopes on the control path: a least-squares slope over a sliding window, and the window.

The line model's tests read the pressure's slope over a few windows: a short one (0.2-1 s)
for the fast tests, where a blocked line climbs far faster than anything else moves, and
4 s (about a breath) for the levelling and the rebound. ``SlidingSlope`` keeps each in O(1)
per block. How short the short window may be depends on what breathing, pulse and the
sensor's noise did to its slope at rest: ``quiet_window`` picks the shortest that leaves
Q/C ``SWING_RATIO`` swings above them.

What the rest measured is only as good as the rest was long: a 4 s slope slid over 5 s of
rest has seen one second of a 4 s breath. ``breathing_slope_swing`` is what a breath of a
given depth does to a window's slope at its worst phase, from the least-squares slope's
response to a sine (population normals #102 and #117: rests of a few seconds measured the
4 s slope's swing at 1.6 and 0.1 mmHg/s where their breathing swings it by 2.4 and 1.9,
and a healthy start's 4 s slope climbing back by that much was called a blockage).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable

SWING_RATIO = 3.0  # fast tests only where Q/C is this many times the artifacts' slope swing
SHORT_WINDOWS_S = (0.2, 0.3, 0.5, 0.75, 1.0)  # what the short slope's window may be


class SlidingSlope:
    """Least-squares slope over the last ``n`` equally spaced points, in O(1) per point.

    Running sums of p and j*p over absolute point numbers j; the sums of j and j^2 over a
    window of consecutive integers are closed forms. No list is built on the control path.
    """

    def __init__(self, n: int, dt_s: float) -> None:
        self.n, self.dt_s = n, dt_s
        self._values: deque[float] = deque()
        self._j = -1
        self._sum_p = 0.0
        self._sum_jp = 0.0

    def add(self, value: float) -> float:
        self._j += 1
        self._values.append(value)
        self._sum_p += value
        self._sum_jp += self._j * value
        if len(self._values) > self.n:
            old = self._values.popleft()
            self._sum_p -= old
            self._sum_jp -= (self._j - self.n) * old
        return self.slope()

    def mean(self) -> float:
        """The mean of the points in the window (0 before the first)."""
        return self._sum_p / len(self._values) if self._values else 0.0

    def slope(self) -> float:
        m = len(self._values)
        if m < 3:
            return 0.0
        first = self._j - m + 1
        sum_j = m * (first + self._j) / 2.0
        sum_jj = (
            self._j * (self._j + 1) * (2 * self._j + 1) - (first - 1) * first * (2 * first - 1)
        ) / 6.0
        den = m * sum_jj - sum_j * sum_j
        return (m * self._sum_jp - sum_j * self._sum_p) / den / self.dt_s if den > 0 else 0.0


def quiet_window(
    window_s: float, full: float, slope_swing: Callable[[float], float | None]
) -> float:
    """The shortest window, no shorter than ``window_s``, over which the artifacts and the
    sensor's noise at rest swing the slope less than Q/C over ``SWING_RATIO``, so the fast
    tests apply (a 1.5 mmHg rms transducer swings a 0.2 s slope by about 50 mmHg/s, as
    much as a 5 mL syringe blocked at 5 mL/min climbs). ``window_s`` if none is."""
    for candidate in SHORT_WINDOWS_S:
        swing = slope_swing(candidate) if candidate >= window_s else None
        if swing is not None and SWING_RATIO * swing <= full:
            return candidate
    return window_s


def sine_slope_gain(window_s: float, period_s: float) -> float:
    """The largest least-squares slope (mmHg/s) over ``window_s`` of a sine of unit
    amplitude (mmHg) and period ``period_s``, over every phase: for p = sin(w t), the
    slope at the window's centre is 12 cos(w t) / W^3 * 2 (sin(x) / w^2 - (W / 2) cos(x) / w)
    with x = w W / 2; a short window gives w (the derivative's peak), a whole number of
    periods about 6 / (pi W)."""
    w = 2.0 * math.pi / period_s
    x = w * window_s / 2.0
    integral = 2.0 * (math.sin(x) / w**2 - (window_s / 2.0) * math.cos(x) / w)
    return abs(12.0 * integral / window_s**3)


def breathing_slope_swing(
    window_s: float, amplitude_mmhg: float, periods_s: Iterable[float]
) -> float:
    """What a breath of ``amplitude_mmhg`` (half its peak to peak) can swing the slope over
    ``window_s`` by, at the worst of ``periods_s`` (breathing is irregular: its period wanders)."""
    return amplitude_mmhg * max((sine_slope_gain(window_s, p) for p in periods_s), default=0.0)
