"""The line at rest: settled or not, its level, its artifacts, and what they do to a slope."""

from __future__ import annotations

import numpy as np
import pytest

from controller.safety.rest import Rest
from controller.safety.timebase import BLOCK_S
from simulator.plant.artifacts import ArtifactConfig, Artifacts

BREATH = ArtifactConfig(respiration_mmhg=3.0, respiration_hz=0.25, cardiac_mmhg=1.0)


def rest_of(values: np.ndarray) -> Rest:
    rest = Rest()
    for k, value in enumerate(values):
        rest.add(k * BLOCK_S, float(value), float(value), held=False)
    return rest


def breathing(seconds: float, level: float = 20.0) -> np.ndarray:
    artifacts = Artifacts(BREATH, 1)
    return np.array([level + artifacts.at(t) for t in np.arange(0.0, seconds, BLOCK_S)])


def test_a_line_still_settling_after_the_stopcock_is_not_at_rest() -> None:
    t = np.arange(0.0, 8.0, BLOCK_S)
    settling = breathing(8.0) - 20.0 * np.exp(-t / 4.0)  # refilling from the tissue, tau 4 s
    status = rest_of(settling).status()
    assert not status.settled and status.rate_mmhg_s > 0.5
    assert "settling" in status.why_not_settled()


def test_a_settled_line_gives_its_level_and_the_envelope_of_its_breathing() -> None:
    status = rest_of(breathing(12.0)).status()
    assert status.settled
    assert status.level_mmhg == pytest.approx(20.0, abs=1.0)
    assert status.envelope_mmhg == pytest.approx(2 * 3.0 + 1.6, abs=2.0)  # breath and pulse
    assert status.period_blocks * BLOCK_S == pytest.approx(4.0, abs=0.3)


def test_too_short_a_rest_is_not_settled_and_the_excursions_say_so() -> None:
    rest = rest_of(breathing(2.0))
    assert not rest.status().settled
    assert rest.excursions(1.0, 1.0) is None
    long_rest = rest_of(breathing(10.0))
    excursions = long_rest.excursions(1.0, 1.0)
    assert excursions is not None and 2.0 < excursions[0] < 8.0


def test_the_slope_swing_is_what_breathing_does_to_a_short_slope() -> None:
    rest = rest_of(breathing(10.0))
    short, long = rest.slope_swing(0.2), rest.slope_swing(4.0)
    # a 3 mmHg breath at 0.25 Hz swings a slope by up to 2 pi f A = 4.7 mmHg/s, plus pulse
    assert 3.0 < short < 15.0
    assert long < short / 2
