"""bench.breath_predictability: its predictors on breathing whose answer is known."""

from __future__ import annotations

import math
import random

import numpy as np

from bench.breath_predictability import (
    AHEAD_S,
    FS_HZ,
    MEAN_S,
    PREDICTORS,
    Signal,
    running_mean,
)
from simulator.plant.artifacts import IrregularRhythm

PERIOD_S = 4.0
DEPTH_MMHG = 5.0


def breathing(irregularity: float, seed: int = 3) -> Signal:
    """Breathing alone (no pulse, no noise), 80 s of it."""
    rhythm = IrregularRhythm(1 / PERIOD_S, DEPTH_MMHG, irregularity, 0.7, random.Random(seed))
    t = np.arange(0.0, 80.0, 1 / FS_HZ)
    cycles = [rhythm.cycle_at(float(x)) for x in t]
    wave = np.array(
        [d * math.sin(2 * math.pi * (x - s) / p) for x, (s, p, d) in zip(t, cycles, strict=True)]
    )
    return Signal(
        t_s=t,
        total_mmhg=wave,
        pulse_mmhg=np.zeros_like(t),
        cycles=cycles,
        breath_period_s=PERIOD_S,
        pulse_period_s=1.0,
        breath_mmhg=DEPTH_MMHG,
        swing_mmhg=2 * DEPTH_MMHG,
    )


def worst_errors(sig: Signal) -> dict[str, float]:
    n, k = int(MEAN_S * FS_HZ), int(AHEAD_S * FS_HZ)
    m = running_mean(sig.total_mmhg, n)
    idx = np.arange(int(20 * FS_HZ), sig.t_s.size - k - 1, 7, dtype=np.intp)
    change = m[idx + k] - m[idx]
    return {
        name: float(np.max(np.abs(change - predict(sig, m, idx))))
        for name, predict in PREDICTORS.items()
    }


def test_a_regular_breath_is_predicted_by_the_last_one_and_not_by_the_level() -> None:
    errors = worst_errors(breathing(irregularity=0.0))
    assert errors["hold"] > 0.8 * DEPTH_MMHG  # a second is a quarter breath: the level moves
    assert errors["last breath"] < 0.01
    assert errors["three breaths"] < 0.01
    assert errors["current breath known"] < 0.01
    assert errors["sine over 1 breath"] < 0.05 * DEPTH_MMHG


def test_on_irregular_breaths_knowing_the_breath_under_way_beats_every_causal_predictor() -> None:
    errors = worst_errors(breathing(irregularity=0.2))
    known = errors.pop("current breath known")
    assert known < 0.5 * min(errors.values())
    assert errors["last breath"] < errors["hold"]
