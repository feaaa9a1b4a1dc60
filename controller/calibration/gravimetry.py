"""Flow error and trumpet curves from timed weights, as IEC 60601-2-24 computes them.

The test weighs the beaker every S = 0.5 min for T = 120 min. With W_i the net
mass at sample i and d the liquid's density:

- flow in each interval: Q_i = 60 (W_i - W_(i-1)) / (S d)  [mL/h] (we divide by
  the measured interval, not the nominal one, so a late sample does not read as
  a flow error);
- mean flow error over the analysis period (the second hour, T1 = 60 min to
  T1 + T2 = 120 min): A = 100 (Q - r) / r, Q the mean flow over that period and
  r the set rate;
- trumpet curve: for each observation window P in (2, 5, 11, 19, 31) min, slide
  a window of p = P / S consecutive intervals over the analysis period and take
  E_p(j) = (100 / p) sum_{i=j}^{j+p-1} (Q_i - r) / r; the curve plots
  max_j E_p(j) and min_j E_p(j) against P. Short windows show the pump's
  short-term irregularity (lead screw, stepper); long windows converge on A.

Pure functions on numpy arrays: no I/O, so the property tests can drive them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

IEC_WINDOWS_MIN = (2.0, 5.0, 11.0, 19.0, 31.0)
IEC_INTERVAL_S = 30.0
IEC_DURATION_MIN = 120.0
IEC_ANALYSIS_START_MIN = 60.0


class GravimetryError(ValueError):
    """The weights cannot give the asked-for figure (too few, not increasing in time)."""


@dataclass(frozen=True, slots=True)
class TrumpetPoint:
    window_min: float
    max_error_pct: float
    min_error_pct: float
    windows: int  # how many positions the window took in the analysis period


@dataclass(frozen=True, slots=True)
class FlowAnalysis:
    flow_ml_h: FloatArray  # Q_i, one per interval (len = samples - 1)
    interval_end_s: FloatArray  # time at the end of each interval
    mean_flow_ml_h: float  # over the analysis period
    mean_error_pct: float  # A
    trumpet: tuple[TrumpetPoint, ...]
    analysis_start_s: float
    analysis_end_s: float


def interval_flows_ml_h(t_s: FloatArray, net_g: FloatArray, density_g_ml: float) -> FloatArray:
    """Q_i for each interval between consecutive weights."""
    dt_s = np.diff(t_s)
    if np.any(dt_s <= 0):
        raise GravimetryError("sample times must strictly increase")
    return np.diff(net_g) / density_g_ml / (dt_s / 3600.0)


def window_errors_pct(flow_ml_h: FloatArray, rate_ml_h: float, p: int) -> FloatArray:
    """E_p(j) for every position j of a window of ``p`` intervals (a moving mean)."""
    relative = (flow_ml_h - rate_ml_h) / rate_ml_h * 100.0
    if p > len(relative):
        return np.empty(0)
    cumulative = np.concatenate(([0.0], np.cumsum(relative)))
    return (cumulative[p:] - cumulative[:-p]) / p


def analyse(
    t_s: FloatArray,
    net_g: FloatArray,
    *,
    rate_ml_h: float,
    density_g_ml: float,
    interval_s: float = IEC_INTERVAL_S,
    analysis_start_s: float = IEC_ANALYSIS_START_MIN * 60.0,
    windows_min: tuple[float, ...] = IEC_WINDOWS_MIN,
) -> FlowAnalysis:
    """Mean flow error and trumpet over the samples from ``analysis_start_s`` on.

    ``t_s`` counts from the pump's start. Windows longer than the analysis period
    are left out of the trumpet rather than reported on fewer intervals.
    """
    if rate_ml_h <= 0 or density_g_ml <= 0:
        raise GravimetryError("rate and density must be positive")
    if len(t_s) != len(net_g) or len(t_s) < 3:
        raise GravimetryError("need at least three weights, each with its time")
    flows = interval_flows_ml_h(t_s, net_g, density_g_ml)
    first = int(np.searchsorted(t_s, analysis_start_s - interval_s / 2))
    if first >= len(t_s) - 2:
        raise GravimetryError(
            f"no weights after the analysis start ({analysis_start_s / 60:g} min)"
        )
    period_s = t_s[-1] - t_s[first]
    mean_flow = float((net_g[-1] - net_g[first]) / density_g_ml / (period_s / 3600.0))
    in_period = flows[first:]
    trumpet = []
    for window_min in windows_min:
        p = round(window_min * 60.0 / interval_s)
        errors = window_errors_pct(in_period, rate_ml_h, p)
        if p < 1 or errors.size == 0:
            continue
        trumpet.append(
            TrumpetPoint(window_min, float(errors.max()), float(errors.min()), int(errors.size))
        )
    return FlowAnalysis(
        flow_ml_h=flows,
        interval_end_s=t_s[1:],
        mean_flow_ml_h=mean_flow,
        mean_error_pct=(mean_flow - rate_ml_h) / rate_ml_h * 100.0,
        trumpet=tuple(trumpet),
        analysis_start_s=float(t_s[first]),
        analysis_end_s=float(t_s[-1]),
    )
