"""The fall comb: heart period found at rest, a tract opening seen within a second through
breathing and heartbeat, and irregular breathing, heart rate variability and handling
spikes left alone."""

from __future__ import annotations

import random

import numpy as np
import pytest

from controller.safety.fall_comb import FallComb
from controller.safety.rhythms import breathing_period, heart_period
from controller.safety.timebase import BLOCK_S
from simulator.plant.artifacts import ArtifactConfig, Artifacts

BODY = ArtifactConfig(respiration_mmhg=3.0, respiration_hz=0.25, cardiac_mmhg=1.5)
IRREGULAR = BODY.model_copy(update={"respiration_irregularity": 0.15, "cardiac_irregularity": 0.05})
REST_S = 6.0


def pressure(config: ArtifactConfig, seconds: float, seed: int = 1) -> np.ndarray:
    """10 ms block medians on an 80 mmHg line: the artifacts and a little noise."""
    artifacts, noise = Artifacts(config, seed), random.Random(seed)
    times = np.arange(0.0, seconds, BLOCK_S)
    return np.array([80.0 + artifacts.at(t) + noise.gauss(0, 0.06) for t in times])


def tract_opening(values: np.ndarray, onset_s: float) -> np.ndarray:
    """The line's fall when the tract opens at 1 mL/min (the simulator's liver: 2.5 mmHg
    at 0.5 s, 7.6 at 1 s, then about 10 mmHg/s)."""
    t = np.arange(values.size) * BLOCK_S - REST_S - onset_s
    early = 7.6 * np.clip(t, 0.0, 1.0) ** 2
    fallen: np.ndarray = values - early - 10.0 * np.clip(t - 1.0, 0.0, 3.0)
    return fallen


def rise(values: np.ndarray, k: int) -> float:
    """What the supervisor passes: the block medians' move over the last 20 ms."""
    return float(values[k] - values[k - 2]) if k >= 2 else 0.0


def run_fall(values: np.ndarray) -> tuple[float | None, FallComb]:
    """Rest for the first 6 s, then infusing with the line levelled: the first alarm time
    (from the start of the infusion) and the comb."""
    rest = round(REST_S / BLOCK_S)
    comb = FallComb()
    held = np.array([comb.held(k * BLOCK_S, rise(values, k)) for k in range(rest)])
    breath = breathing_period(values[:rest])
    assert comb.learn(values[:rest], held, breath[0] if breath else 0)
    for k, value in enumerate(values[rest:]):
        t = k * BLOCK_S
        comb.update(REST_S + t, float(value), rise(values, rest + k))
        verdict = comb.on_block(t, monitoring=True, t_levelled=0.0)
        if verdict is not None:
            assert verdict.kind == "leak" and "cancelled" in verdict.detail
            return t, comb
    return None, comb


def test_the_heart_period_is_found_at_rest_even_with_a_spike_and_noise_has_none() -> None:
    values = pressure(BODY, REST_S)
    breath = breathing_period(values)
    assert breath is not None
    assert heart_period(values) * BLOCK_S == pytest.approx(1 / 1.2, abs=0.03)
    # 10 s at rest, breathing at 4.13 s (about five beats): found all the same
    assert heart_period(pressure(BODY, 10.0)) * BLOCK_S == pytest.approx(1 / 1.2, abs=0.03)
    spiked = values.copy()
    spiked[300:340] += 15.0
    held = np.zeros(values.size, dtype=bool)
    held[300:340] = True
    assert heart_period(spiked, held) * BLOCK_S == pytest.approx(1 / 1.2, abs=0.03)
    noise = np.random.default_rng(2).normal(80.0, 0.5, values.size)
    assert heart_period(noise) == 0
    assert heart_period(values[:150]) == 0  # too short to tell


@pytest.mark.parametrize("seed", range(1, 5))
def test_a_tract_opening_is_seen_within_a_second_and_not_without_it(seed: int) -> None:
    values = pressure(BODY, 50.0, seed)
    onset_s = 30.0
    alarm_s, comb = run_fall(tract_opening(values, onset_s))
    assert alarm_s is not None and 0.0 < alarm_s - onset_s < 0.8, alarm_s
    assert comb.lags == (comb.heart, comb.breath) and comb.heart and comb.breath
    assert comb.swing_mmhg < comb.limit_mmhg / 2  # the fall did not raise its own limit
    assert run_fall(values)[0] is None


@pytest.mark.parametrize("seed", range(1, 7))
def test_irregular_breathing_and_heart_rate_never_trip_it(seed: int) -> None:
    alarm_s, comb = run_fall(pressure(IRREGULAR, 120.0, seed))
    assert alarm_s is None
    assert comb.heart and comb.breath and comb.swing_mmhg > 0  # it was listening


def test_handling_spikes_up_and_down_are_held() -> None:
    values = pressure(BODY, 60.0)
    for start_s, jump in ((20.0, 12.0), (27.0, -9.0), (33.5, 7.0), (41.0, -15.0)):
        k = round((REST_S + start_s) / BLOCK_S)
        t = np.arange(60) * BLOCK_S
        values[k : k + 60] += jump * np.exp(-t / 0.08)
    assert run_fall(values)[0] is None


def test_an_irregular_heartbeat_is_continuous_deterministic_and_within_its_spread() -> None:
    config = ArtifactConfig(cardiac_mmhg=1.5, cardiac_hz=1.2, cardiac_irregularity=0.05)
    first, again = Artifacts(config, 3), Artifacts(config, 3)
    times = np.arange(0.0, 60.0, 0.001)
    values = np.array([first.at(t) for t in times])
    assert np.array_equal(values, [again.at(t) for t in times])
    assert np.max(np.abs(np.diff(values))) < 0.02
    phase_zero = times[1:][(values[:-1] < 0) & (values[1:] >= 0)]
    beats = np.diff(phase_zero)
    mean = 1 / 1.2
    assert beats.min() > mean * 0.95 - 0.01 and beats.max() < mean * 1.05 + 0.01
    assert beats.std() > 0.005


def test_what_the_listening_breath_saw_counts_the_moment_it_ends() -> None:
    """A deeper exhalation near the end of the listening breath (the population's normal
    #92, deep irregular breathing) swings the comb as far as a fall would. The limit the
    comb then tests against must already hold that swing; counted only 1.5 s later, the
    same breath was a false leak the moment listening ended."""
    values = pressure(BODY, 40.0)
    comb = FallComb()
    rest = round(REST_S / BLOCK_S)
    held = np.array([comb.held(k * BLOCK_S, rise(values, k)) for k in range(rest)])
    breath = breathing_period(values[:rest])
    assert comb.learn(values[:rest], held, breath[0] if breath else 0)
    listening_ends_s = comb.span * BLOCK_S + 1.5 + comb.breath * BLOCK_S
    t = np.arange(values.size) * BLOCK_S - REST_S
    # an exhalation 8 mmHg deeper, bottoming out as the listening ends, and the next
    # breath's the same (the comb's residue returns a breath later)
    for centre_s in (listening_ends_s, listening_ends_s + comb.breath * BLOCK_S):
        values -= 8.0 * np.exp(-0.5 * ((t - centre_s) / 0.5) ** 2)
    alarm_s, comb = run_fall(values)
    assert alarm_s is None, alarm_s
    assert comb.swing_mmhg > 3.0  # the deeper breath was learnt, not ignored
