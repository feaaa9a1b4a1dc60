"""Cost of the two combs on the control path: per 10 ms block, and once per fill.

Both run in the bridge's receive callback, so their cost adds to every sample's path to a
verdict. Per block: ``update`` then ``on_block`` on breathing, heartbeat and noise at the
block rate, testing (the line levelled long ago). Once per fill: ``learn`` on 10 s of rest.
The baseline in the same run is the downward CUSUM's step (``cusum_step``), the cheapest
test on the same path.

Run: ``make bench`` (or ``.venv/bin/python -m bench.comb_bench``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import numpy as np

from bench.stats import summary_us
from controller.safety.breath_comb import BreathComb
from controller.safety.fall_comb import FallComb
from controller.safety.rest import cusum_step
from controller.safety.rhythms import breathing_period
from controller.safety.timebase import BLOCK_S
from simulator.plant.artifacts import ArtifactConfig, Artifacts

REST_BLOCKS = 1000
RUN_BLOCKS = 6000
BODY = ArtifactConfig(respiration_mmhg=3.0, respiration_hz=0.25, cardiac_mmhg=1.5)


def pressure(blocks: int) -> list[float]:
    artifacts, noise = Artifacts(BODY, 1), random.Random(1)
    return [80.0 + artifacts.at(k * BLOCK_S) + noise.gauss(0, 0.06) for k in range(blocks)]


def timed(step: Callable[[int], object], blocks: range) -> list[float]:
    clock = time.perf_counter
    times = []
    for k in blocks:
        started = clock()
        step(k)
        times.append(clock() - started)
    return times


def main() -> None:
    values = pressure(REST_BLOCKS + RUN_BLOCKS)
    rest = values[:REST_BLOCKS]
    found = breathing_period(rest)
    assert found is not None
    breath = BreathComb()
    fall = FallComb()
    learn_breath, learn_fall = [], []
    for _ in range(50):
        started = time.perf_counter()
        breath.learn(rest)
        learn_breath.append(time.perf_counter() - started)
        held = np.array(
            [fall.held(k * BLOCK_S, v - rest[k - 2] if k >= 2 else 0.0) for k, v in enumerate(rest)]
        )
        started = time.perf_counter()
        listening = fall.learn(np.asarray(rest), held, found[0])
        learn_fall.append(time.perf_counter() - started)
        assert listening, "no heartbeat found at rest: the fall comb would be timed silent"
    print("once per fill, on 10 s of rest (50 fills)")
    print(f"  breathing comb learn  {summary_us(learn_breath)}")
    print(f"  fall comb learn       {summary_us(learn_fall)}")

    def breath_step(k: int) -> object:
        breath.update(values[k], False)
        return breath.on_block(k * BLOCK_S, True, -100.0)

    def fall_step(k: int) -> object:
        fall.update(k * BLOCK_S, values[k], values[k] - values[k - 2])
        return fall.on_block(k * BLOCK_S, True, -100.0)

    state = [0.0, 0.0]

    def cusum(k: int) -> object:
        state[0], state[1] = cusum_step(state[0], state[1], values[k] - values[k - 1], 0.05, 0.01)
        return state

    blocks = range(REST_BLOCKS, REST_BLOCKS + RUN_BLOCKS)
    print(f"per 10 ms block, testing ({RUN_BLOCKS} blocks)")
    print(f"  breathing comb        {summary_us(timed(breath_step, blocks))}")
    print(f"  fall comb             {summary_us(timed(fall_step, blocks))}")
    print(f"  baseline: CUSUM step  {summary_us(timed(cusum, blocks))}")


if __name__ == "__main__":
    main()
