"""The pressure trace: buffered per sample on the control path, stored in chunks, read with gaps.

A chunk holds consecutive bridge samples (sample ``index`` n, n+1, ...), taken at the
bridge's fixed period, so its times are exactly its first and last times with the samples
evenly between. A lost sample (the index jumps) or a restarted stream (it goes back)
closes the chunk; the reader puts a NaN between chunks that are not consecutive, so a
plot shows a gap as a gap instead of drawing a line across it.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Chunk:
    first_index: int
    n: int
    t_first_s: float
    t_last_s: float
    data: bytes  # float32 pressures

    def as_row(self, injection_id: str) -> tuple[Any, ...]:
        times = json.dumps([self.t_first_s, self.t_last_s])
        return (injection_id, self.first_index, self.n, times, self.data)


class TraceBuffer:
    """Samples of the injection being traced, until the recorder writes them."""

    def __init__(self) -> None:
        self.first_index = 0
        self.next_index = 0
        self._t = array("d")
        self._p = array("f")
        self.closed: list[Chunk] = []

    def add(self, index: int, t_mono_s: float, pressure_mmhg: float) -> None:
        """Two appends on the control path; a gap in ``index`` closes the chunk first."""
        if self._t and index != self.next_index:
            self._close()
        if not self._t:
            self.first_index = index
        self.next_index = index + 1
        self._t.append(t_mono_s)
        self._p.append(pressure_mmhg)

    def _close(self) -> None:
        t = self._t
        self.closed.append(Chunk(self.first_index, len(t), t[0], t[-1], self._p.tobytes()))
        self._t, self._p = array("d"), array("f")

    def take(self) -> list[Chunk]:
        """Every chunk so far, the open one included; the buffer starts afresh."""
        if self._t:
            self._close()
        chunks, self.closed = self.closed, []
        return chunks

    def clear(self) -> None:
        self._t, self._p, self.closed = array("d"), array("f"), []


def trace_arrays(rows: Sequence[Any]) -> tuple[FloatArray, npt.NDArray[np.float32]]:
    """Times and pressures of stored chunks (rows with ``first_index, n, t_json, data``, in
    the order written), with a NaN pressure between chunks whose samples are not consecutive."""
    times: list[FloatArray] = []
    values: list[npt.NDArray[np.float32]] = []
    expected: int | None = None
    for row in rows:
        t0, t1 = json.loads(row["t_json"])
        if expected is not None and row["first_index"] != expected:
            times.append(np.array([0.5 * (times[-1][-1] + t0)]))
            values.append(np.array([np.nan], dtype=np.float32))
        times.append(np.linspace(t0, t1, row["n"]))
        values.append(np.frombuffer(row["data"], dtype=np.float32))
        expected = row["first_index"] + row["n"]
    if not times:
        return np.empty(0), np.empty(0, dtype=np.float32)
    return np.concatenate(times), np.concatenate(values)
