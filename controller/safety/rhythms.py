"""Finding the breathing and heart periods in the rest pressure (numpy, once per fill).

Breathing: the autocorrelation peak between 2 and 8 s, accepted only if it reaches 0.6
and the pressure half a period later is anti-correlated (so a drift is never taken for a
rhythm). Heart: the shortest autocorrelation lag between 0.33 and 1.5 s reaching 90 % of
the best one, after breathing is removed with a 1 s moving mean (differencing at the
breathing period would cancel the heartbeat too whenever that period is close to a whole
number of beats) and handling spikes are bridged. Both take block medians (10 ms).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from controller.safety.timebase import BLOCK_S

FloatArray = npt.NDArray[np.float64]
MIN_BREATH_S, MAX_BREATH_S = 2.0, 8.0
MIN_BREATH_CORRELATION = 0.6
MAX_HALF_PERIOD_CORRELATION = -0.3
MIN_HEART_S, MAX_HEART_S = 0.33, 1.5  # 40-180 beats per minute
MIN_HEART_CORRELATION = 0.5


def breathing_period(rest_mmhg: Sequence[float] | FloatArray) -> tuple[int, float] | None:
    """(period in blocks, correlation) of the rest pressure, or None if it has no rhythm."""
    x = np.asarray(rest_mmhg, dtype=np.float64)
    n = x.size
    low, high = round(MIN_BREATH_S / BLOCK_S), min(round(MAX_BREATH_S / BLOCK_S), n - 150)
    if high <= low:
        return None
    x = x - x.mean()
    products = np.correlate(x, x, "full")[n - 1 :]
    squares = np.concatenate(([0.0], np.cumsum(x * x)))
    lags = np.arange(low // 2, high + 1)
    energy = np.sqrt(squares[n - lags] * (squares[n] - squares[lags]))
    r = np.divide(products[lags], energy, out=np.zeros(lags.size), where=energy > 0)
    first = int(np.count_nonzero(lags < low))
    inner = r[first:]
    rising_end = [r.size - 1] if inner.size > 1 and inner[-1] > inner[-2] else []
    peaks = first + 1 + np.flatnonzero((inner[1:-1] >= inner[:-2]) & (inner[1:-1] >= inner[2:]))
    peaks = np.concatenate((peaks, rising_end)).astype(int)  # a period at the longest lag
    # the strongest peak that is a rhythm: at a long lag the two overlapping stretches are
    # short and may correlate better by chance than the true period (half-way, such a lag is
    # positively correlated); taking it alone refused a clear breath in one window of three
    for best in sorted(peaks.tolist(), key=lambda k: -r[k]):
        if r[best] < MIN_BREATH_CORRELATION:
            break
        period = int(lags[best])
        half = r[period // 2 - lags[0]] if period // 2 >= lags[0] else 1.0
        if half <= MAX_HALF_PERIOD_CORRELATION:
            return period, float(r[best])
    return None


def heart_period(rest_blocks: Sequence[float] | FloatArray, held: npt.ArrayLike = ()) -> int:
    """The heart period in blocks (0 if no heartbeat is found) from the rest pressure."""
    x = _without_spikes(np.asarray(rest_blocks, dtype=np.float64), held)
    if x.size > 400:
        x = x[50:-49] - np.convolve(x, np.ones(100) / 100, mode="valid")
    n = x.size
    low, high = round(MIN_HEART_S / BLOCK_S), min(round(MAX_HEART_S / BLOCK_S), n - 200)
    if high <= low:
        return 0
    x = x - x.mean()
    lags = np.arange(low, high + 1)
    r = np.array([_correlation(x, int(lag)) for lag in lags])
    peaks = (r[1:-1] >= r[:-2]) & (r[1:-1] >= r[2:])
    candidates = lags[1:-1][peaks & (r[1:-1] >= max(MIN_HEART_CORRELATION, 0.9 * r.max()))]
    return int(candidates[0]) if candidates.size else 0


def detrended(values: Sequence[float] | FloatArray) -> FloatArray:
    """The values less their least-squares parabola: the curve of a line still settling
    (an exponential tail) leaves no trend behind to hide or fake a rhythm."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 4:
        return x - (x.mean() if x.size else 0.0)
    index = np.linspace(-1.0, 1.0, x.size)
    trend = np.polynomial.polynomial.polyval(index, np.polynomial.polynomial.polyfit(index, x, 2))
    fitted: FloatArray = x - trend
    return fitted


def _without_spikes(x: FloatArray, held: npt.ArrayLike) -> FloatArray:
    """Held blocks replaced by straight lines between their unheld neighbours."""
    mask = np.asarray(held, dtype=bool)
    if mask.size != x.size or not mask.any() or mask.all():
        return x
    index = np.arange(x.size)
    filled: FloatArray = np.interp(index, index[~mask], x[~mask])
    return filled


def _correlation(x: FloatArray, lag: int) -> float:
    a, b = x[lag:], x[:-lag]
    den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b)) / den if den > 0 else 0.0
