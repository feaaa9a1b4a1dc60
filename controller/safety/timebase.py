"""The control path's clock rates, defined once: the stream, and the 10 ms blocks."""

from __future__ import annotations

SAMPLE_RATE_HZ = 1000  # the bridge streams this fast, one sample a frame
SAMPLE_S = 1.0 / SAMPLE_RATE_HZ
BLOCK_SAMPLES = 10  # the line detectors work on 10 ms block medians
BLOCK_S = BLOCK_SAMPLES * SAMPLE_S
