"""The line's compliance, measured from the first rise of each injection.

At the moment the pump starts, nothing has yet left the line, so the pressure rises at
Q / C whatever the needle and the tissue (the tip sits behind the needle's resistance);
the rise then bends as flow through the needle builds. A cubic fitted to the first
``window`` of the rise gives that initial slope, hence C. Breathing and pulse ride on the
rise, and at low rates the pulse alone swings a slope as far as the rise. Breathing is
slower than the window: it is cancelled with the rest pressure one breathing period
before each point (the rhythm was found at rest; with none, the rest level). The pulse is
faster: its period was found at rest too, so the fit carries a sine and a cosine at it
and its second harmonic, over a window of at least a heartbeat and a half. The catalogs'
compliance (syringe, line, dome) is where the controller starts; a real line differs from
it by a factor of two either way (``docs/controller.md``), so the measurement is bounded to
that.

Everything that scales with Q / C (the occlusion tests' drift, the levelling test, the
stored volume that relief withdraws) takes the measured value once it is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.safety.timebase import BLOCK_S

FloatArray = npt.NDArray[np.float64]
MIN_WINDOW_S = 0.5
HEARTBEATS = 1.5  # the window holds at least this many beats
MAX_WINDOW_S = 2.0
WINDOW_OF_TAU = 0.6  # of the catalog's needle time constant C x R
BOUNDS = (0.45, 2.3)  # of the catalog compliance
# a real line differs from the catalog by up to a factor of two either way: about two
# standard deviations of log C (the simulator's population draws 0.5-2x log-uniformly)
PRIOR_LOG_SD = 0.4


@dataclass(frozen=True)
class Rhythms:
    """What was found at rest: the last breath (to cancel breathing with) and the heart
    period (whose swing the fit takes out); either may be missing."""

    breath_s: float = 0.0
    breath_values: FloatArray | None = None  # block medians over the last breath at rest
    heart_s: float = 0.0
    t_start_s: float = 0.0

    def breath_at(self, t: float) -> float | None:
        """The rest pressure one breathing period before ``t`` (None once that is no
        longer at rest, or with no rhythm)."""
        values = self.breath_values
        if values is None or self.breath_s <= 0:
            return None
        index = round((t - self.t_start_s) / BLOCK_S)
        return float(values[index]) if 0 <= index < values.size else None

    def columns(self, ages: FloatArray) -> list[FloatArray]:
        if self.heart_s <= 0:
            return []
        out: list[FloatArray] = []
        for harmonic in (1, 2):
            phase = 2.0 * np.pi * harmonic * ages / self.heart_s
            out += [np.sin(phase), np.cos(phase)]
        return out


class ComplianceEstimate:
    def __init__(self, prior_ml_per_mmhg: float) -> None:
        self.prior = prior_ml_per_mmhg
        self.value = prior_ml_per_mmhg
        self.measured = False
        self._points: list[tuple[float, float]] = []
        self._t0 = 0.0
        self._q_ml_s = 0.0
        self._window_s = MIN_WINDOW_S
        self._rhythms = Rhythms()
        self._level = 0.0
        self._active = False

    def start(
        self,
        t0: float,
        q_ml_s: float,
        path_resistance: float,
        rest_level: float,
        rhythms: Rhythms,
    ) -> None:
        """The pump starts now on a line at rest at ``rest_level``."""
        tau_s = self.prior * path_resistance
        window = max(MIN_WINDOW_S, WINDOW_OF_TAU * tau_s, HEARTBEATS * rhythms.heart_s)
        self._t0, self._q_ml_s, self._window_s = t0, q_ml_s, min(MAX_WINDOW_S, window)
        self._rhythms, self._level = rhythms, rest_level
        self._points = []
        self._active = True

    def stop(self) -> None:
        self._active = False

    def add(self, t: float, block_mmhg: float) -> bool:
        """One block median of the rise; True when the estimate was just made."""
        if not self._active:
            return False
        age = t - self._t0
        if age < self._window_s:
            breath = self._rhythms.breath_at(t)
            self._points.append((age, block_mmhg - (self._level if breath is None else breath)))
            return False
        self._active = False
        return self._fit()

    def _fit(self) -> bool:
        if len(self._points) < 10:
            return False
        ages, rises = (np.array(column) for column in zip(*self._points, strict=True))
        design = np.column_stack([ages**k for k in range(4)] + self._rhythms.columns(ages))
        coefficients, *_ = np.linalg.lstsq(design, rises, rcond=None)
        slope = float(coefficients[1])
        if not slope > 0:
            return False
        log_sd = slope_log_sd(design, rises - design @ coefficients, slope)
        low, high = BOUNDS
        measured = self._q_ml_s / slope
        self.value = min(high * self.prior, max(low * self.prior, self._weighed(measured, log_sd)))
        self.measured = True
        return True

    def _weighed(self, measured: float, log_sd: float) -> float:
        """The measurement and the catalog weighed by how well each is known (in log C).
        Over the population's blocked lines (session 27) this took the fit's error (sd of
        log C) from 0.37 to 0.34 at 0.2 mL/min, 0.19 to 0.17 at 1 and 0.14 to 0.11 at 5;
        the catalog alone is off by 0.4. At 0.2 mL/min a breath's residue that the cubic
        takes for the rise, which no residual shows, still leaves fits twice too low."""
        w_measured, w_prior = 1.0 / max(log_sd, 1e-6) ** 2, 1.0 / PRIOR_LOG_SD**2
        log_c = (w_measured * np.log(measured) + w_prior * np.log(self.prior)) / (
            w_measured + w_prior
        )
        return float(np.exp(log_c))


def slope_log_sd(design: FloatArray, residuals: FloatArray, slope: float) -> float:
    """The fitted initial slope's standard error relative to it (about the sd of log C):
    the least-squares covariance, its variance inflated for residuals that follow each
    other (breathing's residue, the pulse: (1 + r) / (1 - r) for lag-one correlation r)."""
    n, k = design.shape
    if n <= k + 2:
        return np.inf
    variance = float(residuals @ residuals) / (n - k)
    r = float(np.corrcoef(residuals[:-1], residuals[1:])[0, 1]) if variance > 0 else 0.0
    r = min(max(r, 0.0), 0.98)
    covariance = variance * (1.0 + r) / (1.0 - r) * np.linalg.pinv(design.T @ design)
    return float(np.sqrt(max(covariance[1, 1], 0.0))) / slope
