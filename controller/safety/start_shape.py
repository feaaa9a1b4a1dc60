"""A healthy start slows the way a line of resistances and compliances does; a leak bends it.

When the pump starts at a constant rate Q into syringe, line, needle and tissue, the line's
pressure is Q times the step response of an RC network's driving-point impedance, so its
slope is a positive sum of decaying exponentials (plus the tissue's slow creep, a constant).
Such a slope's logarithm is convex: over three points W apart, s(t) s(t-2W) >= s(t-W)^2; the
slope may slow, never faster than it already did. A needle leaving the tumour or the tract
opening during a long start (a viscous drug through a long needle, a soft line: the start
takes a minute) does not make the line fall: it lowers the level the line is rising to, and
its slope drops below that bound. Those were most of the needle-outs and cracks the
population bench still missed (session 29: 14 of 16 needle-out misses traced, 31 of 32
crack misses, on lines rising to 100-490 mmHg).

The slope tested is the comb's, over the last breath with breathing cancelled
(``breath_comb.py``); what breathing still leaves in it is bounded by e, a multiple of how
far it strayed at rest (never under ``SWING_FLOOR_MMHG_S``), on every one of the three
points and in the worst direction: a violation is s(t) < (s(t-W) - e)^2 / (s(t-2W) + e) - e,
held for ``PERSIST_S`` (an irregular breath bends the slope for less than that; a leak
bends it for good), while the start still rises at ``RISING_ERRORS`` e or more. First fill
only: a later fill starts from a line still decaying from the last, whose slope is not the
step response. The margin is set with ``bench/start_shape_margin.py`` (docs/performance.md,
session 30): no healthy start of the population (normal runs, fault runs before their
onset) came within 0.62 e of a verdict.
"""

from __future__ import annotations

from collections import deque

from controller.safety.persistence import Persistence
from controller.safety.verdict import Verdict, VerdictKind

SAMPLE_S = 0.1  # the slope is kept at this spacing
SPAN_S = 3.0  # W: the three points are this far apart
SWINGS = 1.0  # e: this many of the breath-cancelled slope's swings at rest ...
SWING_FLOOR_MMHG_S = 0.4  # ... each never under this (a few breaths at rest can be very alike)
PERSIST_S = 2.0
# and the middle slope at least this many e: a start still rising at a few mmHg/s. Once the
# line has levelled, its breath-cancelled slope is breathing deeper than at rest, around
# zero (population normals #160, #201: 0.6-0.9 of the margin, their slopes under 1.5 mmHg/s)
RISING_ERRORS = 8.0


class StartShape:
    """The log-convexity test on the first fill's breath-cancelled slope."""

    def __init__(self) -> None:
        self._slopes: deque[float | None] = deque(maxlen=2 * round(SPAN_S / SAMPLE_S) + 1)
        self._armed = False
        self._next_s = 0.0
        self._error_mmhg_s = 0.0
        self._bent = Persistence(PERSIST_S)

    def start(self, t: float, *, first_fill: bool, after_s: float, swing_mmhg_s: float) -> None:
        """A fill starts at ``t``; the test runs on the first fill only, on slopes from
        ``after_s`` into it (before then the slope's window still holds the rest)."""
        self._slopes.clear()
        self._bent.reset()
        self._armed = first_fill
        self._next_s = t + after_s
        self._error_mmhg_s = SWINGS * max(swing_mmhg_s, SWING_FLOOR_MMHG_S)

    @property
    def error_mmhg_s(self) -> float:
        """e: what breathing may still leave on each point of the slope."""
        return self._error_mmhg_s

    def take(self, t: float, slope_mmhg_s: float | None) -> bool:
        """Keep the slope if a sample is due (every ``SAMPLE_S`` on the first fill)."""
        if not self._armed or t < self._next_s:
            return False
        self._next_s += SAMPLE_S
        self._slopes.append(slope_mmhg_s)
        return True

    def on_block(self, t: float, slope_mmhg_s: float | None) -> Verdict | None:
        if not self.take(t, slope_mmhg_s) or len(self._slopes) < (self._slopes.maxlen or 0):
            return None
        earliest, middle, now = self._slopes[0], self._slopes[len(self._slopes) // 2], slope_mmhg_s
        if earliest is None or middle is None or now is None:
            self._bent.reset()
            return None
        bound = self.lowest_healthy_mmhg_s(earliest, middle, self._error_mmhg_s)
        if not self._bent.holds(t, bound is not None and now < bound):
            return None
        assert bound is not None
        detail = (
            f"the line's rise slowed faster than a healthy line's can: its slope (breathing "
            f"cancelled) {now:.2f} mmHg/s where {earliest:.2f} and {middle:.2f} "
            f"({SPAN_S:g} s apart) allow no less than {bound:.2f}, for {PERSIST_S:g} s, "
            "while infusing: drug leaving by another way (the needle out of the tumour, "
            "the tract opened)"
        )
        values = {"slope_mmhg_s": now, "bound_mmhg_s": bound, "error_mmhg_s": self._error_mmhg_s}
        return Verdict(VerdictKind.LEAK, detail, t, values)

    @staticmethod
    def lowest_healthy_mmhg_s(earliest: float, middle: float, error: float) -> float | None:
        """The lowest slope a healthy start can show after ``earliest`` and ``middle`` (each
        W apart), each of the three off by up to ``error``; None unless the start is still
        rising well above that error (``RISING_ERRORS``)."""
        if earliest <= 0.0 or middle <= max(error * RISING_ERRORS, 0.0):
            return None
        return (middle - error) ** 2 / (earliest + error) - error
