"""Ground truth: the true signals of a run, and when each fault began.

Recorded at every plant step (1 kHz or faster) in compact arrays, exported as NPZ
or CSV so that a detector's latency can be measured against the real onset.
"""

from __future__ import annotations

import bisect
import json
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

FIELDS = (
    "t_s",  # scenario time: seconds since the plant started
    "q_plunger_ml_min",
    "q_needle_ml_min",
    "q_tissue_ml_min",
    "q_backflow_ml_min",
    "q_leak_ml_min",
    "p_line_mmhg",  # syringe and line, where the transducer is
    "p_tip_mmhg",  # at the needle tip, in the tissue
    "p_transducer_mmhg",  # what a perfect transducer reads: line + hydrostatic + artifacts + drift
    "artifact_mmhg",
    "delivered_ml",  # plunger displacement times barrel area
    "tissue_ml",
    "backflow_ml",
    "leak_ml",
)


@dataclass(frozen=True)
class FaultOnset:
    kind: str
    t_s: float
    delivered_ml: float
    params: dict[str, float | int | str] = field(default_factory=dict)
    applied: bool = True  # False: recorded but meaningless here (a link fault in an offline run)


class GroundTruth:
    """``max_rows`` bounds memory for long real-time runs (the oldest rows go first);
    ``None`` keeps everything, for runs whose truth is exported."""

    def __init__(self, max_rows: int | None = None) -> None:
        self.columns: dict[str, array[float]] = {name: array("d") for name in FIELDS}
        self.onsets: list[FaultOnset] = []
        self.t0_mono_s = 0.0  # host monotonic time of scenario time 0 (real-time rigs)
        self.max_rows = max_rows
        self.dropped_rows = 0

    def append(self, row: tuple[float, ...]) -> None:
        for column, value in zip(self.columns.values(), row, strict=True):
            column.append(value)
        if self.max_rows is not None and len(self.columns["t_s"]) > self.max_rows * 3 // 2:
            excess = len(self.columns["t_s"]) - self.max_rows
            for column in self.columns.values():
                del column[:excess]
            self.dropped_rows += excess

    def __len__(self) -> int:
        return len(self.columns["t_s"])

    def value_at(self, name: str, t_s: float) -> float:
        """The newest recorded value at or before ``t_s``."""
        times = self.columns["t_s"]
        i = bisect.bisect_right(times, t_s) - 1
        return self.columns[name][max(i, 0)]

    def last(self, name: str) -> float:
        column = self.columns[name]
        return column[-1] if column else 0.0

    def arrays(self) -> dict[str, npt.NDArray[np.float64]]:
        return {
            name: np.frombuffer(col, dtype=np.float64).copy() for name, col in self.columns.items()
        }

    def onset_of(self, kind: str) -> FaultOnset | None:
        return next((o for o in self.onsets if o.kind == kind), None)

    def save(self, path: Path) -> Path:
        """``.npz`` (arrays + onsets as JSON) or ``.csv`` (onsets as ``#`` header lines)."""
        onsets = json.dumps([asdict(o) for o in self.onsets])
        if path.suffix == ".npz":
            arrays: dict[str, object] = {"onsets_json": np.array(onsets), **self.arrays()}
            np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
        elif path.suffix == ".csv":
            data = np.column_stack(list(self.arrays().values()))
            header = f"onsets {onsets}\n" + ",".join(FIELDS)
            np.savetxt(path, data, delimiter=",", header=header, fmt="%.6g")
        else:
            raise ValueError(f"ground truth goes to .npz or .csv, not {path.suffix!r}")
        return path


def load_npz(path: Path) -> tuple[dict[str, npt.NDArray[np.float64]], list[dict[str, object]]]:
    with np.load(path) as data:
        arrays = {name: data[name] for name in FIELDS}
        onsets: list[dict[str, object]] = json.loads(str(data["onsets_json"]))
    return arrays, onsets
