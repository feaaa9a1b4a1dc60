"""1 kHz samples -> 10 ms block medians -> a 250 ms running median, with noise and jumps.

A block median drops any single wild sample; the running median over 25 blocks lets a
needle-handling spike (tens of mmHg decaying in about 80 ms) barely through while a line's
own movement passes with 125 ms of lag. How far the block medians moved in the last 20 ms
tells a spike from any physiology: no line or breath moves 8 mmHg in 20 ms.
"""

from __future__ import annotations

import math
from collections import deque

from controller.safety.timebase import BLOCK_SAMPLES

FILTER_BLOCKS = 25  # running median over 250 ms
NOISE_BLOCKS = 100  # the noise estimate looks at the last second
MEDIAN_OF_10_RANGE_SIGMAS = 3.08  # the median range of 10 Gaussian samples, in sigmas


class Conditioner:
    def __init__(self) -> None:
        self._block: list[float] = []
        self.blocks: deque[float] = deque(maxlen=FILTER_BLOCKS)
        self.ranges: deque[float] = deque(maxlen=NOISE_BLOCKS)
        self.filtered = math.nan

    def add(self, pressure_mmhg: float) -> bool:
        """True when a block completed and ``filtered`` has a new value."""
        block = self._block
        block.append(pressure_mmhg)
        if len(block) < BLOCK_SAMPLES:
            return False
        block.sort()
        half = BLOCK_SAMPLES // 2
        self.blocks.append(0.5 * (block[half - 1] + block[half]))
        self.ranges.append(block[-1] - block[0])
        self._block = []
        ordered = sorted(self.blocks)
        self.filtered = ordered[len(ordered) // 2]
        return True

    @property
    def block(self) -> float:
        """The newest 10 ms block median."""
        return self.blocks[-1]

    @property
    def jump_mmhg(self) -> float:
        """How far the block medians moved in the last 20 ms (signed)."""
        blocks = self.blocks
        return blocks[-1] - blocks[-3] if len(blocks) >= 3 else 0.0

    def noise_sd_mmhg(self) -> float:
        """Robust sample noise from the ranges of the last second's blocks (0 until known)."""
        if len(self.ranges) < NOISE_BLOCKS // 2:
            return 0.0
        ordered = sorted(self.ranges)
        return ordered[len(ordered) // 2] / MEDIAN_OF_10_RANGE_SIGMAS

    @property
    def block_noise_mmhg(self) -> float:
        """Noise of a block median: about 1.25 sigma / sqrt(10) for Gaussian noise."""
        return 1.25 * self.noise_sd_mmhg() / math.sqrt(BLOCK_SAMPLES)
