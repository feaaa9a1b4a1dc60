"""The compliance measured from the first rise, with breathing cancelled."""

from __future__ import annotations

import numpy as np
import pytest

from controller.safety.compliance import (
    PRIOR_LOG_SD,
    ComplianceEstimate,
    Rhythms,
    slope_log_sd,
)
from controller.safety.timebase import BLOCK_S


def rise(c_ml_per_mmhg: float, q_ml_s: float, r: float, seconds: float) -> np.ndarray:
    """A first-order line rising from rest 10 mmHg at Q through R."""
    t = np.arange(0.0, seconds, BLOCK_S)
    tau = c_ml_per_mmhg * r
    return 10.0 + q_ml_s * r * (1.0 - np.exp(-t / tau))


def estimate(values: np.ndarray, prior: float, rhythms: Rhythms | None = None) -> float:
    estimator = ComplianceEstimate(prior)
    estimator.start(100.0, 1.0 / 60.0, 1200.0, 10.0, rhythms or Rhythms())
    for k, value in enumerate(values):
        if estimator.add(100.0 + k * BLOCK_S, float(value)):
            break
    assert estimator.measured
    return estimator.value


def test_the_initial_slope_gives_the_true_compliance_not_the_catalogs() -> None:
    true_c = 1.6e-3  # 1.6 uL/mmHg; the catalog said 1.0
    assert estimate(rise(true_c, 1 / 60, 1200.0, 3.0), 1.0e-3) == pytest.approx(true_c, rel=0.1)


def test_breathing_and_a_pulse_as_fast_as_the_rise_are_fitted_out() -> None:
    """At 1 mL/min a 1.5 mmHg pulse at 72 beats a minute swings the slope by 11 mmHg/s,
    as much as the rise itself: the fit carries the rhythms found at rest."""
    t = np.arange(-4.0, 3.0, BLOCK_S)
    breath = 3.0 * np.sin(2 * np.pi * t / 4.0 + 0.7)
    pulse = 1.5 * (
        0.8 * np.sin(2 * np.pi * 1.2 * t + 2.0) + 0.2 * np.sin(4 * np.pi * 1.2 * t + 4.0)
    )
    line = np.concatenate([np.full(400, 10.0), rise(1.6e-3, 1 / 60, 1200.0, 3.0)])
    values = line[: t.size] + breath + pulse
    rhythms = Rhythms(breath_s=4.0, breath_values=values[:400], heart_s=1 / 1.2, t_start_s=100.0)
    measured = estimate(values[400:], 1.0e-3, rhythms)
    assert measured == pytest.approx(1.6e-3, rel=0.15)


def test_the_estimate_is_bounded_to_what_real_lines_do() -> None:
    assert estimate(rise(20e-3, 1 / 60, 1200.0, 3.0), 1.0e-3) == pytest.approx(2.3e-3)


def test_the_fit_and_the_catalog_are_weighed_by_how_well_each_is_known() -> None:
    """A measurement known to a hundredth stands; one as uncertain as the catalog (its
    log-sd ``PRIOR_LOG_SD``) meets it half way in log C."""
    estimator = ComplianceEstimate(1.0e-3)
    assert estimator._weighed(1.6e-3, 0.01) == pytest.approx(1.6e-3, rel=0.01)
    halfway = estimator._weighed(1.6e-3, PRIOR_LOG_SD)
    assert halfway == pytest.approx(np.sqrt(1.6e-3 * 1.0e-3), rel=1e-9)


def test_the_slopes_error_grows_with_the_noise_and_with_residuals_that_follow_each_other() -> None:
    """White residuals: the least-squares standard error; residuals that follow each other
    (a breath's residue, a pulse) carry fewer independent points, so a larger error."""
    ages = np.arange(0.0, 2.0, BLOCK_S)
    design = np.column_stack([ages**k for k in range(4)])
    rng = np.random.default_rng(1)
    white = rng.normal(0.0, 1.0, ages.size)
    ols_se = float(np.sqrt(np.linalg.inv(design.T @ design)[1, 1]))
    assert slope_log_sd(design, white, 10.0) == pytest.approx(ols_se / 10.0, rel=0.2)
    assert slope_log_sd(design, 3.0 * white, 10.0) == pytest.approx(
        3.0 * slope_log_sd(design, white, 10.0), rel=0.01
    )
    follows = np.convolve(white, np.ones(20), mode="same")  # each point like the next
    shuffled = rng.permutation(follows)  # the same values in no order
    assert slope_log_sd(design, follows, 10.0) > 2.5 * slope_log_sd(design, shuffled, 10.0)
