"""A transducer noisier than a working one is a sensor fault, once it persists."""

from __future__ import annotations

import random

from controller.safety.conditioner import Conditioner
from controller.safety.noise import SensorNoise
from controller.safety.verdict import Verdict


def test_noise_detector_persists_before_it_speaks() -> None:
    rng = random.Random(1)
    conditioner, detector = Conditioner(), SensorNoise(max_sd_mmhg=3.0, persist_s=0.3)
    verdicts: list[Verdict | None] = []
    for k in range(2000):
        sd = 0.2 if k < 1000 else 10.0
        if conditioner.add(rng.gauss(50.0, sd)):
            verdicts.append(detector.on_block(k / 1000, conditioner))
    first = next(i for i, v in enumerate(verdicts) if v is not None)
    assert 100 < first < 200  # after the noise starts (block 100) and its persistence
