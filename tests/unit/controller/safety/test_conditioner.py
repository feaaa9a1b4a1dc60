"""The conditioner: block medians, the running median, noise and jumps."""

from __future__ import annotations

import math
import random

import pytest

from controller.safety.conditioner import Conditioner
from controller.safety.persistence import Persistence


def test_the_running_median_rejects_a_handling_spike() -> None:
    conditioner = Conditioner()
    filtered = []
    for k in range(1000):
        t = k / 1000
        spike = 30.0 * math.exp(-(t - 0.5) / 0.08) if t >= 0.5 else 0.0
        if conditioner.add(20.0 + spike):
            filtered.append(conditioner.filtered)
    assert max(filtered) < 20.0 + 30.0 * 0.35  # the raw spike peaks at 50 mmHg


def test_noise_is_estimated_from_the_blocks_and_jumps_are_signed() -> None:
    conditioner = Conditioner()
    rng = random.Random(1)
    for _ in range(2000):
        conditioner.add(50.0 + rng.gauss(0.0, 1.5))
    assert conditioner.noise_sd_mmhg() == pytest.approx(1.5, rel=0.15)
    assert conditioner.block_noise_mmhg < 1.5 / 2
    for value in [50.0] * 10 + [40.0] * 20:
        conditioner.add(value)
    assert conditioner.jump_mmhg < -5.0


def test_persistence_holds_only_after_its_time_and_resets() -> None:
    rule = Persistence(0.05)
    assert not rule.holds(0.00, True)
    assert not rule.holds(0.04, True)
    assert rule.holds(0.05, True) and rule.since == 0.0
    assert not rule.holds(0.06, False) and rule.since is None
    assert not rule.holds(0.07, True)
