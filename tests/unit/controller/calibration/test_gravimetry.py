"""IEC 60601-2-24 flow error and trumpet arithmetic on weights whose answer is known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from controller.calibration.gravimetry import GravimetryError, analyse, window_errors_pct

DENSITY = 0.9982


def weights(rate_ml_h: float, flow_of_t: object = None) -> tuple[np.ndarray, np.ndarray]:
    """Two hours of weights every 30 s for a flow profile (mL/h as a function of minutes)."""
    t_s = np.arange(0, 120 * 60 + 1, 30.0)
    if flow_of_t is None:
        volume_ml = rate_ml_h * t_s / 3600.0
    else:
        fine_s = np.arange(0, 120 * 60 + 1, 1.0)
        flow = np.array([flow_of_t(t / 60.0) for t in fine_s])  # type: ignore[operator]
        volume_ml = np.interp(t_s, fine_s, np.concatenate(([0.0], np.cumsum(flow[1:]) / 3600.0)))
    return t_s, volume_ml * DENSITY


def test_a_perfect_pump_has_no_error_and_the_iec_window_counts() -> None:
    t_s, net_g = weights(1.0)
    result = analyse(t_s, net_g, rate_ml_h=1.0, density_g_ml=DENSITY)
    assert result.mean_error_pct == pytest.approx(0.0, abs=1e-9)
    assert [p.window_min for p in result.trumpet] == [2, 5, 11, 19, 31]
    # the standard's m = (T2 - P) / S + 1 positions in the second hour
    assert [p.windows for p in result.trumpet] == [117, 111, 99, 83, 59]
    assert all(abs(p.max_error_pct) < 1e-9 and abs(p.min_error_pct) < 1e-9 for p in result.trumpet)
    assert (result.analysis_start_s, result.analysis_end_s) == (3600.0, 7200.0)


def test_a_constant_bias_is_the_same_at_every_window() -> None:
    t_s, net_g = weights(5.0)
    result = analyse(t_s, net_g * 1.02, rate_ml_h=5.0, density_g_ml=DENSITY)
    assert result.mean_error_pct == pytest.approx(2.0)
    for point in result.trumpet:
        assert point.max_error_pct == pytest.approx(2.0) and point.min_error_pct == pytest.approx(
            2.0
        )


def test_a_periodic_error_makes_a_trumpet_that_closes_on_the_mean() -> None:
    period_min = 4.0
    t_s, net_g = weights(1.0, lambda m: 1.0 + 0.05 * math.sin(2 * math.pi * m / period_min))
    result = analyse(t_s, net_g, rate_ml_h=1.0, density_g_ml=DENSITY)
    spreads = [p.max_error_pct - p.min_error_pct for p in result.trumpet]
    assert spreads[0] > 4.0  # 2 min = half a period: most of the +-5 % shows
    assert all(a > b for a, b in itertools.pairwise(spreads))
    assert abs(result.mean_error_pct) < 0.1


def test_start_up_does_not_count_against_the_second_hour() -> None:
    t_s, net_g = weights(1.0, lambda m: 1.0 - math.exp(-m / 1.5))
    result = analyse(t_s, net_g, rate_ml_h=1.0, density_g_ml=DENSITY)
    assert abs(result.mean_error_pct) < 0.01
    assert result.flow_ml_h[0] < 0.3  # the start-up curve shows it


def test_late_samples_are_divided_by_their_own_interval() -> None:
    t_s, net_g = weights(1.0)
    late = t_s.copy()
    late[150] += 3.0  # one weight 3 s late: it holds 3 s more of liquid
    net_late = net_g.copy()
    net_late[150] += 1.0 / 3600.0 * 3.0 * DENSITY
    result = analyse(late, net_late, rate_ml_h=1.0, density_g_ml=DENSITY)
    assert np.allclose(result.flow_ml_h, 1.0)


@pytest.mark.parametrize(
    ("t_s", "why"),
    [
        (np.array([0.0, 30.0]), "at least three"),
        (np.array([0.0, 30.0, 30.0, 60.0]), "strictly increase"),
        (np.array([0.0, 30.0, 60.0, 90.0]), "no weights after the analysis start"),
    ],
)
def test_weights_that_cannot_give_a_result_are_refused(t_s: np.ndarray, why: str) -> None:
    with pytest.raises(GravimetryError, match=why):
        analyse(t_s, t_s / 3600.0, rate_ml_h=1.0, density_g_ml=DENSITY)


@given(
    arrays(np.float64, st.integers(1, 80), elements=st.floats(0.0, 10.0)),
    st.integers(1, 40),
)
def test_window_errors_are_the_naive_moving_mean(flows: np.ndarray, p: int) -> None:
    got = window_errors_pct(flows, 2.0, p)
    naive = [
        100.0 / p * sum((q - 2.0) / 2.0 for q in flows[j : j + p])
        for j in range(len(flows) - p + 1)
    ]
    assert np.allclose(got, naive, atol=1e-9)
