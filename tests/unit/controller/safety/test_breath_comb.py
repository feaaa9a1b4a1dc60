"""The breathing comb: the rhythm found at rest, a blockage seen through the breathing, and
irregular breathing (the simulator's, breath by breath) left alone."""

from __future__ import annotations

import random

import numpy as np
import pytest

from controller.safety.breath_comb import BreathComb
from controller.safety.rhythms import breathing_period, detrended
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import Verdict
from simulator.plant.artifacts import ArtifactConfig, Artifacts

BREATHING = ArtifactConfig(respiration_mmhg=3.0, respiration_hz=0.25, cardiac_mmhg=1.5)


def pressure(config: ArtifactConfig, seconds: float, seed: int = 1) -> np.ndarray:
    """The artifacts at the 10 ms block rate, on a 40 mmHg line, with a little noise."""
    artifacts, noise = Artifacts(config, seed), random.Random(seed)
    times = np.arange(0.0, seconds, BLOCK_S)
    return np.array([40.0 + artifacts.at(t) + noise.gauss(0, 0.2) for t in times])


def test_the_rhythm_is_found_in_six_seconds_at_rest_and_a_drift_is_not_a_rhythm() -> None:
    found = breathing_period(pressure(BREATHING, 6.0))
    assert found is not None
    period, correlation = found
    assert period * BLOCK_S == pytest.approx(4.0, abs=0.3) and correlation > 0.6
    t = np.arange(0.0, 6.0, BLOCK_S)
    assert breathing_period(40.0 + 20.0 * np.exp(-t / 3.0)) is None  # a line settling
    assert breathing_period(np.random.default_rng(1).normal(40.0, 1.0, t.size)) is None
    assert breathing_period(pressure(BREATHING, 2.5)) is None  # too short to tell


def run_comb(values: np.ndarray, rest_s: float = 6.0) -> float | None:
    """Feed the comb as the supervisor does (line levelled at the start); first alarm time."""
    rest = round(rest_s / BLOCK_S)
    comb = BreathComb()
    assert comb.learn(values[:rest].tolist())
    for k, value in enumerate(values[rest:]):
        t = k * BLOCK_S
        comb.update(float(value), held=False)
        verdict = comb.on_block(t, monitoring=True, t_levelled=0.0)
        if verdict is not None:
            assert verdict.kind == "occlusion" and "one breath" in verdict.detail
            return t
    return None


def test_a_blocked_line_climbing_at_low_rate_is_seen_through_the_breathing() -> None:
    values = pressure(BREATHING, 50.0)
    onset_s, slope = 30.0, 3.4  # 0.2 mL/min into a 5 mL syringe's compliance
    t = np.arange(values.size) * BLOCK_S - 6.0
    blocked = values + np.clip(t - onset_s, 0.0, None) * slope
    alarm_s = run_comb(blocked)
    assert alarm_s is not None and 0.0 < alarm_s - onset_s < 2.5
    assert run_comb(values) is None


@pytest.mark.parametrize("seed", range(1, 7))
def test_irregular_breathing_alone_never_trips_it(seed: int) -> None:
    irregular = BREATHING.model_copy(update={"respiration_irregularity": 0.15})
    assert run_comb(pressure(irregular, 90.0, seed)) is None


def test_a_handling_spike_now_or_one_breath_ago_is_held() -> None:
    values = pressure(BREATHING, 40.0)
    values[3100:3140] += 15.0  # 0.4 s at +15 mmHg, 25 s into the infusion
    rest = 600

    def verdicts(hold: bool) -> list[Verdict | None]:
        comb = BreathComb()
        assert comb.learn(values[:rest].tolist())
        found = []
        for k, value in enumerate(values[rest:]):
            i = rest + k
            held = hold and 3100 <= i < 3180  # the spike and its smoothing window
            comb.update(float(value), held)
            found.append(comb.on_block(k * BLOCK_S, True, 0.0))
        return found

    assert not any(verdicts(hold=True))
    assert any(verdicts(hold=False))  # the spike alone would have tripped it


def test_irregular_breathing_is_continuous_deterministic_and_within_its_spread() -> None:
    config = BREATHING.model_copy(update={"respiration_irregularity": 0.15, "cardiac_mmhg": 0.0})
    first, again = Artifacts(config, 3), Artifacts(config, 3)
    times = np.arange(0.0, 120.0, 0.001)
    values = np.array([first.at(t) for t in times])
    assert np.array_equal(values, [again.at(t) for t in times])
    assert np.max(np.abs(np.diff(values))) < 0.03  # no jumps from breath to breath
    crossings = times[1:][(values[:-1] < 0) & (values[1:] >= 0)]
    periods = np.diff(crossings)
    assert periods.min() > 4.0 * 0.85 - 0.01 and periods.max() < 4.0 * 1.15 + 0.01
    assert periods.std() > 0.1  # it does vary
    assert 2.5 < np.max(np.abs(values)) < 3.0 * 1.15 + 1e-9


def test_the_period_is_a_rhythm_not_a_chance_peak_at_a_long_lag() -> None:
    """At a long lag the two overlapping stretches are short and may correlate better by
    chance than the true period does; that lag, half-way positively correlated, is no
    rhythm, and taking it refused a clear 4 s breath in one window of three."""
    values = pressure(BREATHING, 30.0)
    windows = [detrended(values[end - 1000 : end]) for end in range(1000, 3000, 25)]
    periods = [breathing_period(window) for window in windows]  # as the rest looks
    assert all(found is not None for found in periods)
    assert {round(found[0] * BLOCK_S) for found in periods if found} == {4}
