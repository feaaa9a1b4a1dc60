"""The margin bench's replay: the statistic it holds is the one the test decides on, so a
margin read off the replay is the margin the supervisor runs with."""

from __future__ import annotations

import math
import random

import numpy as np

from bench.breath_rise_margin import Recording, replay
from controller.safety.breath_rise import BreathRise
from controller.safety.timebase import BLOCK_S

PERIOD_BLOCKS = 400
ENVELOPE_MMHG = 6.0


def blocked_line(seconds: float, onset_s: float) -> list[float]:
    """A start at 14 mmHg/s decaying over 6 s under a 4 s breath, blocked at ``onset_s``."""
    noise = random.Random(2)

    def open_line(t: float) -> float:
        return 20.0 + 84.0 * (1.0 - math.exp(-t / 6.0))

    def line(t: float) -> float:
        base = open_line(t) if t < onset_s else open_line(onset_s) + 14.0 * (t - onset_s)
        return base + 2.5 * math.sin(2 * math.pi * t / 4.0) + noise.gauss(0, 0.3)

    return [line(k * BLOCK_S) for k in range(round(seconds / BLOCK_S))]


def test_the_replay_passes_the_limit_on_the_block_the_test_speaks() -> None:
    blocks = blocked_line(20.0, onset_s=10.0)
    times = np.arange(len(blocks), dtype=np.float64) * BLOCK_S
    test = BreathRise()
    test.learn(PERIOD_BLOCKS, ENVELOPE_MMHG)
    spoke = next(
        t
        for t, b in zip(times, blocks, strict=True)
        if test.on_block(float(t), b, held=False) is not None
    )
    rec = Recording(
        "synthetic",
        period_blocks=PERIOD_BLOCKS,
        envelope_mmhg=ENVELOPE_MMHG,
        times_s=times.tolist(),
        blocks_mmhg=blocks,
        held=[False] * len(blocks),
    )
    held = replay(rec)
    first = int(np.flatnonzero(held > test.limit_mmhg)[0])
    assert 10.0 < spoke < 12.0
    assert abs(float(times[first]) - spoke) <= 1.5 * BLOCK_S  # the hold: 0.1 s, float-rounded
    assert float(held[times < 10.0].max()) < test.limit_mmhg  # the open line stays under
