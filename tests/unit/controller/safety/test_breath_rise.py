"""The breath rise: a healthy first fill's rise over the last breath only slows, breathing
(the simulator's, irregular breath by breath), pulse and noise on it; a line blocked during
its start climbs again and is an occlusion within a second; a spike is not; a later fill
is not tested; without breathing the lag is fixed."""

from __future__ import annotations

import math
import random

import numpy as np

from controller.safety.breath_rise import (
    ENVELOPE_MARGIN,
    MIN_LIMIT_MMHG,
    NO_RHYTHM_LAG_S,
    OFFSET_MMHG,
    BreathRise,
)
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import VerdictKind
from simulator.plant.artifacts import ArtifactConfig, Artifacts

BREATHING = ArtifactConfig(
    respiration_mmhg=4.0,
    respiration_hz=0.25,
    respiration_irregularity=0.15,
    cardiac_mmhg=1.5,
    cardiac_hz=1.2,
)
PERIOD_BLOCKS = 400  # 4 s, what the comb learns of this breathing
REST_S = 10.0
ENVELOPE_MMHG = 11.0  # the breathing's 8 mmHg and the pulse's 3, peak to peak
FULL_MMHG_S = 14.0  # Q/C at 1 mL/min
TAU_S = 6.0  # C x R of the line and tissue
CREEP_MMHG_S = 0.2


def healthy_mmhg(t: float) -> float:
    """A start at t = 0 from 20 mmHg: Q/C decaying over C x R, and the tissue's creep."""
    if t < 0.0:
        return 20.0
    return 20.0 + FULL_MMHG_S * TAU_S * (1.0 - math.exp(-t / TAU_S)) + CREEP_MMHG_S * t


def blocked_mmhg(t: float, onset_s: float) -> float:
    """The same line blocked at ``onset_s``: it climbs at Q/C from where it stood."""
    if t < onset_s:
        return healthy_mmhg(t)
    return healthy_mmhg(onset_s) + FULL_MMHG_S * (t - onset_s)


def blocks(line: object, seconds: float, seed: int = 3) -> np.ndarray:
    """Block medians from ``-REST_S`` to ``seconds``: the line, breathing, pulse, noise."""
    artifacts, noise = Artifacts(BREATHING, seed), random.Random(seed)
    times = np.arange(-REST_S, seconds, BLOCK_S)
    assert callable(line)
    return np.array([line(t) + artifacts.at(t + REST_S) + noise.gauss(0, 0.3) for t in times])


def first_alarm_s(
    values: np.ndarray, spikes_at_s: tuple[float, ...] = (), *, held: bool = True
) -> float | None:
    """Learn the rest's rhythm and envelope, then feed the fill as the supervisor does (a
    spike: 60 mmHg for 0.1 s, flagged while on the line); the first alarm's time."""
    rest = round(REST_S / BLOCK_S)
    test = BreathRise()
    test.learn(PERIOD_BLOCKS, ENVELOPE_MMHG)
    for k, value in enumerate(values[rest:]):
        t = k * BLOCK_S
        spike = any(0.0 <= t - at < 0.1 for at in spikes_at_s)  # decays in about 80 ms
        verdict = test.on_block(t, float(value) + (60.0 if spike else 0.0), held=spike and held)
        if verdict is not None:
            assert verdict.kind is VerdictKind.OCCLUSION and "blocked" in verdict.detail
            return t
    return None


def test_a_healthy_start_under_irregular_breathing_is_left_alone() -> None:
    for seed in range(1, 6):
        assert first_alarm_s(blocks(healthy_mmhg, 60.0, seed)) is None


def test_a_line_blocked_during_its_start_is_an_occlusion_within_seconds() -> None:
    """Blocked 9 s in, at 85 of its 104 mmHg and still rising at 3.1 mmHg/s: y climbs at
    Q/C less the slope a breath before (14 - 6.3 mmHg/s) towards a limit of 11.4 mmHg
    (breathing 8 mmHg and pulse 3 mmHg peak to peak)."""
    onset_s = 9.0
    for seed in range(1, 6):
        alarm_s = first_alarm_s(blocks(lambda t: blocked_mmhg(t, onset_s), 30.0, seed))
        assert alarm_s is not None and 0.0 < alarm_s - onset_s < 2.5


def test_a_handling_spike_is_held_out() -> None:
    values = blocks(healthy_mmhg, 30.0)
    assert first_alarm_s(values, spikes_at_s=(8.0, 15.0, 22.0)) is None
    # the same spikes, not flagged: 15 mmHg in the 0.4 s mean, over an 11.4 mmHg limit
    assert first_alarm_s(values, spikes_at_s=(8.0, 15.0, 22.0), held=False) is not None


def test_the_limit_stands_on_the_rest_envelope_and_never_under_its_floor() -> None:
    test = BreathRise()
    test.learn(PERIOD_BLOCKS, ENVELOPE_MMHG)
    assert test.limit_mmhg == ENVELOPE_MARGIN * ENVELOPE_MMHG + OFFSET_MMHG
    test.learn(PERIOD_BLOCKS, 0.5)  # a still line: noise alone
    assert test.limit_mmhg == MIN_LIMIT_MMHG


def test_a_later_fill_is_not_tested() -> None:
    values = blocks(lambda t: blocked_mmhg(t, 9.0), 20.0)
    later = BreathRise()
    later.learn(PERIOD_BLOCKS, ENVELOPE_MMHG)
    later.disarm()
    for k, value in enumerate(values[round(REST_S / BLOCK_S) :]):
        assert later.on_block(k * BLOCK_S, float(value), held=False) is None


def test_without_a_rhythm_at_rest_the_rise_is_over_a_fixed_lag() -> None:
    still = ArtifactConfig(cardiac_mmhg=0.5, cardiac_hz=1.2)  # no breathing in the line
    onset_s = 9.0
    artifacts, noise = Artifacts(still, 5), random.Random(5)
    times = np.arange(0.0, 20.0, BLOCK_S)
    test = BreathRise()
    test.learn(0, 2.0)
    assert test.lag * BLOCK_S == NO_RHYTHM_LAG_S
    for t in times:
        value = blocked_mmhg(t, onset_s) + artifacts.at(t) + noise.gauss(0, 0.3)
        if test.on_block(t, value, held=False) is not None:
            assert 0.0 < t - onset_s < 1.2  # a 4 mmHg limit: y climbs 8.6 mmHg/s
            return
    raise AssertionError("a blocked line without breathing was not seen")
