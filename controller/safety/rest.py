"""The line at rest (pump still, line open to the patient): settled yet, its level, its artifacts.

After the stopcock is turned back from air, or after a fill, the line relaxes toward the
tissue's pressure with a time constant of compliance x (needle + tissue resistance):
seconds, up to half a minute for a stiff tumour. Breathing and pulse ride on top. A rest
level or an artifact envelope taken from that decay is wrong (a mean of a decaying line is
not its rest; its spread is the decay, not the breathing), so ``status`` averages the
pressure over whole breaths (one breathing period, found on the detrended signal), calls
the line settled only once that average has stopped moving, and measures the envelope
around it. The controller refuses a start until the line has settled.

Cost: ``add`` is two appends on the control path; ``status`` runs numpy over at most 20 s
of block medians, when a start is asked for.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.safety.rhythms import MAX_BREATH_S, MIN_BREATH_S, breathing_period, detrended
from controller.safety.slopes import breathing_slope_swing
from controller.safety.timebase import BLOCK_S

FloatArray = npt.NDArray[np.float64]
WINDOW_S = 20.0
# At least this long at rest before the line can be called settled: the breathing's period
# is found in 10 s of rest, and the limits are set from what breathing did to the slopes
# there. With 3 s (the first rule) population runs started on a breath or two: the period
# was not found, the envelope was a default, a 4 s slope had slid over a second of a
# breath; 5 of 60 blocked-line runs at 0.2 mL/min were stopped as occluded before their
# blockage, and 3 of 100 healthy ones (issue 17).
MIN_REST_S = 10.0
SETTLED_MMHG_PER_S = 0.15  # the breath-averaged level may move at most this fast ...
SETTLED_PER_ENVELOPE = 0.03  # ... plus this much per mmHg of breathing (its residue)
# Once called settled, the line stays so while its averaged level moves less than this
# many times the limit, if it was called settled within the last HOLD_SETTLED_S: a
# breath-averaged rate near the limit wavers across it from one block to the next (an
# irregular breath), and a start asked a moment after "settled" must not meet "settling".
# A real disturbance (the stopcock, a flush, a fill's decay) moves the level far faster.
UNSETTLE_FACTOR = 2.0
HOLD_SETTLED_S = 1.0
NO_RHYTHM_AVERAGE_S = 2.0
ENVELOPE_MIN_S = 4.0
DEFAULT_ENVELOPE_MMHG = 8.0  # when the rest was too short to measure one
ENVELOPE_QUANTILES = (2.0, 98.0)


@dataclass(frozen=True)
class RestStatus:
    settled: bool
    level_mmhg: float  # the pressure averaged over the last breath (or 2 s)
    envelope_mmhg: float  # peak to peak of the artifacts around that average
    rate_mmhg_s: float  # how fast the averaged pressure still moves
    span_s: float  # how long the line has been at rest (as far as this window sees)
    period_blocks: int  # the breathing period last found in this rest (0: none yet)

    def why_not_settled(self) -> str:
        if self.span_s < MIN_REST_S:
            return (
                f"line still settling: at rest for {self.span_s:.1f} s of the {MIN_REST_S:g} s "
                "that learn its breathing and pulse"
            )
        return (
            f"line still settling: its pressure moves {self.rate_mmhg_s:+.2f} mmHg/s "
            f"averaged over a breath (level {self.level_mmhg:.1f} mmHg); wait until it is at rest"
        )


class Rest:
    def __init__(self) -> None:
        size = round(WINDOW_S / BLOCK_S)
        self._t: deque[float] = deque(maxlen=size)
        self._filtered: deque[float] = deque(maxlen=size)
        self._blocks: deque[float] = deque(maxlen=size)
        self._held: deque[bool] = deque(maxlen=size)
        self._status: RestStatus | None = None  # computed once per block, for any caller
        # the breathing period last found in this rest: averaging keeps that length while a
        # window with an irregular breath shows no clear rhythm, so the breath-averaged rate
        # does not jump to a 2 s average that leaves half a breath in it
        self._breath_blocks = 0
        self._settled_at_s = float("-inf")  # when a status last called the line settled

    def add(self, t: float, filtered_mmhg: float, block_mmhg: float, held: bool) -> None:
        """One 10 ms block at rest; ``held``: a handling spike is near it."""
        self._t.append(t)
        self._filtered.append(filtered_mmhg)
        self._blocks.append(block_mmhg)
        self._held.append(held)
        self._status = None

    def clear(self) -> None:
        self._status = None
        self._breath_blocks = 0
        self._settled_at_s = float("-inf")
        for ring in (self._t, self._filtered, self._blocks, self._held):
            ring.clear()

    @property
    def span_s(self) -> float:
        return self._t[-1] - self._t[0] if len(self._t) > 1 else 0.0

    def status(self) -> RestStatus:
        if self._status is None:
            self._status = self._computed_status()
        return self._status

    def _computed_status(self) -> RestStatus:
        x = np.asarray(self._filtered, dtype=np.float64)
        if x.size < round(1.0 / BLOCK_S):
            level = float(x[-1]) if x.size else 0.0
            return RestStatus(False, level, DEFAULT_ENVELOPE_MMHG, 0.0, self.span_s, 0)
        found = breathing_period(detrended(x[-round(10.0 / BLOCK_S) :]))
        if found:
            self._breath_blocks = found[0]
        period = self._breath_blocks or round(NO_RHYTHM_AVERAGE_S / BLOCK_S)
        period = min(period, x.size // 2)
        averaged = np.convolve(x, np.ones(period) / period, mode="valid")
        lag = min(period, averaged.size - 1)
        rate = float(averaged[-1] - averaged[-1 - lag]) / (lag * BLOCK_S) if lag else 0.0
        envelope = self._envelope(x, averaged, period)
        allowed = SETTLED_MMHG_PER_S + SETTLED_PER_ENVELOPE * envelope
        if self._t[-1] - self._settled_at_s <= HOLD_SETTLED_S:
            allowed *= UNSETTLE_FACTOR
        settled = self.span_s >= MIN_REST_S and abs(rate) <= allowed
        if settled:
            self._settled_at_s = self._t[-1]
        return RestStatus(
            settled, float(averaged[-1]), envelope, rate, self.span_s, self._breath_blocks
        )

    def _envelope(self, x: FloatArray, averaged: FloatArray, period: int) -> float:
        """Peak to peak of the pressure around its breath average, over the settled tail."""
        # the settled tail only: a breath or two, never the settling before it
        tail = min(max(round(ENVELOPE_MIN_S / BLOCK_S), round(1.2 * period)), averaged.size)
        if tail * BLOCK_S < ENVELOPE_MIN_S:
            return DEFAULT_ENVELOPE_MMHG
        centre = period // 2
        around = x[centre : centre + averaged.size][-tail:] - averaged[-tail:]
        low, high = np.percentile(around, ENVELOPE_QUANTILES)
        return float(high - low)

    def filtered(self, seconds: float = 10.0) -> FloatArray:
        """The last ``seconds`` of the running-median pressure, its trend removed."""
        return detrended(list(self._filtered)[-round(seconds / BLOCK_S) :])

    def blocks(self, seconds: float = 10.0) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """The last ``seconds`` of block medians, trend removed, and their spike marks."""
        n = round(seconds / BLOCK_S)
        values = detrended(list(self._blocks)[-n:])
        return values, np.asarray(list(self._held)[-n:], dtype=bool)

    def slope_swing(self, window_s: float) -> float:
        """How far the artifacts alone swing a least-squares slope over ``window_s`` of block
        medians (99th percentile, mmHg/s): what a rebound must climb beyond. Where the rest
        slid the window over less than a whole breath it has not seen the breath's worst
        phase: then at least what a breath as deep as the envelope swings it by."""
        values, _ = self.blocks()
        n = round(window_s / BLOCK_S)
        if n < 3:
            return 0.0
        measured = 0.0
        if values.size >= n + 10:
            offsets = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
            weights = offsets / float(np.dot(offsets, offsets)) / BLOCK_S
            slopes = np.convolve(values, weights[::-1], mode="valid")
            measured = float(np.percentile(np.abs(slopes), 99.0))
        status = self.status()
        breath_s = status.period_blocks * BLOCK_S
        if values.size - n >= round((breath_s or MAX_BREATH_S) / BLOCK_S):
            return measured
        return max(measured, breathing_swing(window_s, status.envelope_mmhg))

    def recent_blocks(self, seconds: float) -> FloatArray:
        """The last ``seconds`` of block medians as they were (trend kept)."""
        n = round(seconds / BLOCK_S)
        return np.asarray(list(self._blocks)[-n:], dtype=np.float64)

    def excursions(
        self, up_drift_mmhg_s: float, down_drift_mmhg_s: float
    ) -> tuple[float, float] | None:
        """How far the up and down CUSUMs climb on the detrended rest with these drifts:
        what breathing and heartbeat alone make them do. None if the rest is too short."""
        if self.span_s < ENVELOPE_MIN_S:
            return None
        up = down = top_up = top_down = 0.0
        spent_up, spent_down = up_drift_mmhg_s * BLOCK_S, down_drift_mmhg_s * BLOCK_S
        for step in np.diff(self.filtered()):
            up, down = cusum_step(up, down, float(step), spent_up, spent_down)
            top_up, top_down = max(top_up, up), max(top_down, down)
        return top_up, top_down


def breathing_swing(window_s: float, envelope_mmhg: float) -> float:
    """A breath as deep as the envelope through a ``window_s`` slope, at whatever period
    breathing may have: a rest too short to slide the window over a whole breath is too
    short to trust the period it found (5 s of a 4 s breath gave 2.5 s)."""
    periods = np.linspace(MIN_BREATH_S, MAX_BREATH_S, 25)
    return breathing_slope_swing(window_s, envelope_mmhg / 2.0, (float(p) for p in periods))


def cusum_step(
    up: float, down: float, step: float, up_drift: float, down_drift: float
) -> tuple[float, float]:
    """One step of both CUSUMs. Shared by the live detector and the rest analysis, whose
    excursions set the live limits, so the two can never count differently."""
    return max(0.0, up + step - up_drift), max(0.0, down - step - down_drift)
