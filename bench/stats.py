"""Small helpers for printing latency distributions."""

from __future__ import annotations

import numpy as np


def summary_us(samples_s: list[float]) -> str:
    arr = np.asarray(samples_s) * 1e6
    return (
        f"n={arr.size:5d}  median {np.median(arr):8.1f} us  "
        f"p99 {np.percentile(arr, 99):8.1f} us  max {arr.max():8.1f} us"
    )
