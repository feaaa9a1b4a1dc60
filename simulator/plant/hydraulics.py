"""Unit conversions and the resistances and compliances of the fluid path.

Internal units: pressure mmHg, volume mL, time s, flow mL/s, resistance
mmHg*s/mL, conductance mL/(s*mmHg), compliance mL/mmHg. Catalog and config
figures are in the units clinicians and datasheets use (mL/min, uL/mmHg, cP, mm)
and are converted here, once.
"""

from __future__ import annotations

import itertools
import math

from controller.procedure.fluid_path import poiseuille_resistance

__all__ = ["poiseuille_resistance"]

PA_PER_MMHG = 133.322
ML_PER_M3 = 1e6
ATMOSPHERE_MMHG = 760.0
WATER_MMHG_PER_CM = 0.7356  # 1 cmH2O; saline is within 1 % of water
OPEN_CONDUCTANCE = 1e3  # mL/(s*mmHg): a "wire", e.g. a needle tip in open water


def ml_min_to_ml_s(q_ml_min: float) -> float:
    return q_ml_min / 60.0


def per_ml_min_to_per_ml_s(resistance_mmhg_per_ml_min: float) -> float:
    """Resistance quoted as mmHg per (mL/min) -> mmHg*s/mL."""
    return resistance_mmhg_per_ml_min * 60.0


def conductance(resistance_mmhg_s_per_ml: float) -> float:
    return OPEN_CONDUCTANCE if resistance_mmhg_s_per_ml <= 0 else 1.0 / resistance_mmhg_s_per_ml


def air_compliance(bubble_ml_at_atmosphere: float, gauge_mmhg: float) -> float:
    """Isothermal gas bubble: V = V0 P0 / P, so dV/dP = V0 P0 / P^2 (absolute pressures)."""
    absolute = max(ATMOSPHERE_MMHG + gauge_mmhg, 10.0)
    return bubble_ml_at_atmosphere * ATMOSPHERE_MMHG / (absolute * absolute)


def interpolate(table: dict[float, float], x: float) -> float:
    """Piecewise-linear lookup, clamped at the ends."""
    xs = sorted(table)
    if x <= xs[0]:
        return table[xs[0]]
    for lo, hi in itertools.pairwise(xs):
        if x <= hi:
            return table[lo] + (table[hi] - table[lo]) * (x - lo) / (hi - lo)
    return table[xs[-1]]


def plunger_area_m2(inner_diameter_mm: float) -> float:
    return math.pi * (inner_diameter_mm * 0.5e-3) ** 2
