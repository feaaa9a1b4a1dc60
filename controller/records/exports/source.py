"""What every export is made from: the case as the case book shows it, and each of its
injections as the reports detail them (request, delivery, times, pressure, alarms)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from controller.records import queries
from controller.records.report import injection_detail
from controller.records.trace import FloatArray, trace_arrays

Trace = tuple[FloatArray, npt.NDArray[np.float32]]  # t_s, pressure_mmhg (NaN across a gap)


@dataclass(frozen=True)
class CaseExport:
    case: dict[str, Any]  # CaseBook.view
    injections: list[dict[str, Any]]  # report.injection_detail, oldest first

    def actor_of(self, injection_id: str, kind: str = "started") -> str | None:
        """Who caused this injection's event of this kind (the first one)."""
        for event in self.case["events"]:
            if event["injection_id"] == injection_id and event["kind"] == kind:
                return str(event["actor"])
        return None

    def people(self) -> list[str]:
        """Everyone named in the case's record, in order of appearance (not the controller)."""
        seen: dict[str, None] = {}
        for event in self.case["events"]:
            if event["actor"] and event["actor"] != "controller":
                seen.setdefault(event["actor"], None)
        return list(seen)


def case_export(db: Path, case: dict[str, Any]) -> CaseExport:
    """In a worker thread: the case's injections read in full from the record."""
    rows = queries.case_injections(db, case["id"])
    return CaseExport(case, [injection_detail(db, dict(row)) for row in rows])


def case_traces(db: Path, export: CaseExport) -> dict[str, Trace]:
    """In a worker thread: each injection's pressure trace (t_s, pressure_mmhg), gaps as NaN."""
    return {
        item["id"]: trace_arrays(queries.pressure_chunks(db, item["id"]))
        for item in export.injections
    }
