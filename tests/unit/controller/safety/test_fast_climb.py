"""The fast climb: a blocked line at a high rate found within a few tenths of a second on the
blocks, and the pulse, deep breathing and handling spikes left alone."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from controller.safety.fast_climb import (
    FastClimb,
    applies,
    breath_climb_mmhg_s,
    fast_drift_mmhg_s,
    rest_excursion_mmhg,
)
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import Verdict, VerdictKind
from simulator.plant.artifacts import ArtifactConfig, Artifacts

PULSE = ArtifactConfig(
    respiration_mmhg=1.5,
    respiration_hz=0.3,
    cardiac_mmhg=2.0,
    cardiac_hz=2.0,
    cardiac_irregularity=0.05,
)
FULL_MMHG_S = 100.0  # a 5 mL syringe blocked at 5 mL/min
REST_S = 6.0


def blocks(
    config: ArtifactConfig, seconds: float, noise_mmhg: float = 0.6, seed: int = 1
) -> np.ndarray:
    """10 ms block medians on a 200 mmHg line: artifacts and block-median noise."""
    artifacts, noise = Artifacts(config, seed), random.Random(seed)
    times = np.arange(0.0, seconds, BLOCK_S)
    return np.array([200.0 + artifacts.at(t) + noise.gauss(0, noise_mmhg) for t in times])


def run(values: np.ndarray, envelope_mmhg: float) -> tuple[Verdict | None, float]:
    """Rest for ``REST_S``, then the levelled line block by block, as the supervisor feeds it;
    the verdict and its time (s after the rest)."""
    climb = FastClimb()
    n_rest = round(REST_S / BLOCK_S)
    climb.learn(values[:n_rest] - values[:n_rest].mean(), np.zeros(n_rest, dtype=bool))
    climb.restart()
    drift = fast_drift_mmhg_s(FULL_MMHG_S, 0.0, envelope_mmhg)
    assert applies(FULL_MMHG_S, drift)
    for k in range(n_rest, values.size):
        jump = float(values[k] - values[k - 2])
        verdict = climb.on_block(
            k * BLOCK_S,
            float(values[k]),
            jump,
            drift_mmhg_s=drift,
            lowest_drift_mmhg_s=drift,
            full_mmhg_s=FULL_MMHG_S,
        )
        if verdict is not None:
            return verdict, k * BLOCK_S - REST_S
    return None, float("inf")


def blocked_at(values: np.ndarray, onset_s: float) -> np.ndarray:
    t = np.arange(values.size) * BLOCK_S - REST_S - onset_s
    climbed: np.ndarray = values + FULL_MMHG_S * np.clip(t, 0.0, None)
    return climbed


def test_a_line_blocked_at_a_high_rate_is_found_within_a_fifth_of_a_second() -> None:
    values = blocked_at(blocks(PULSE, REST_S + 10.0), onset_s=5.0)
    verdict, at_s = run(values, envelope_mmhg=7.0)
    assert verdict is not None and verdict.kind is VerdictKind.OCCLUSION, verdict
    assert 5.0 < at_s < 5.2, at_s


def test_pulse_breathing_and_noise_alone_never_reach_the_limit() -> None:
    deep = PULSE.model_copy(update={"respiration_mmhg": 5.0, "respiration_irregularity": 0.2})
    for seed in range(1, 6):
        verdict, _ = run(blocks(deep, REST_S + 30.0, seed=seed), envelope_mmhg=10.0)
        assert verdict is None, (seed, verdict)


def test_a_handling_spike_either_way_is_no_blockage() -> None:
    values = blocks(PULSE, REST_S + 6.0)
    t = np.arange(values.size) * BLOCK_S
    for start_s, amplitude in ((REST_S + 1.0, 20.0), (REST_S + 2.5, -20.0), (REST_S + 4.0, 6.0)):
        after = t - start_s
        values = values + np.where(
            after >= 0.0, amplitude * np.exp(-np.clip(after, 0, None) / 0.08), 0.0
        )
    verdict, _ = run(values, envelope_mmhg=7.0)
    assert verdict is None, verdict


def test_the_limit_is_what_the_same_cusum_did_at_rest() -> None:
    """Noise alone at rest: a few mmHg at most; a breath climbing faster than the drift
    accumulates its excess."""
    quiet = np.random.default_rng(1).normal(0.0, 0.6, 1000)
    held = np.zeros(quiet.size, dtype=bool)
    assert 0.0 < rest_excursion_mmhg(quiet, held, 30.0) < 2.0
    t = np.arange(1000) * BLOCK_S
    breath = 5.0 * np.sin(2 * np.pi * 0.3 * t)  # climbs at up to 9.4 mmHg/s
    assert rest_excursion_mmhg(breath, held, 30.0) == 0.0
    assert rest_excursion_mmhg(breath, held, 4.0) > 2.0


def test_where_breathing_climbs_near_half_of_q_over_c_the_test_stands_aside() -> None:
    drift = fast_drift_mmhg_s(40.0, 0.0, envelope_mmhg=14.0)  # 26.4 mmHg/s for the breath
    assert not applies(40.0, drift)  # 13.6 left to accumulate, under 0.4 of 40
    assert applies(100.0, fast_drift_mmhg_s(100.0, 0.0, envelope_mmhg=12.0))
    assert not applies(20.0, fast_drift_mmhg_s(20.0, 0.0, envelope_mmhg=0.5))  # too slow a line
    # a rhythm of 5 s learnt at rest: a breath of 4 s (a fifth shorter) climbs 13.2 mmHg/s
    assert applies(40.0, fast_drift_mmhg_s(40.0, 0.0, envelope_mmhg=14.0, breath_period_s=5.0))


def test_a_breath_climbs_fastest_when_shorter_and_deeper_than_at_rest() -> None:
    # pi x 10 mmHg / 4 s, a fifth deeper: 9.4 mmHg/s; no rhythm: a 2 s breath
    assert breath_climb_mmhg_s(10.0, 5.0) == pytest.approx(1.2 * math.pi * 10.0 / 4.0)
    assert breath_climb_mmhg_s(10.0, 0.0) == pytest.approx(1.2 * math.pi * 10.0 / 2.0)
    assert breath_climb_mmhg_s(10.0, 2.0) == breath_climb_mmhg_s(10.0, 0.0)  # never under 2 s
