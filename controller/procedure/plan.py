"""Procedure plans: targets, the radial and sequential techniques, and the checklist.

Radial: from one entry point the needle visits several positions in the tumour in the
same session, the dose split into aliquots with a pause between them while the
operator moves the needle and confirms its position. Sequential: one sector of the
tumour per treatment cycle, clockwise from cycle to cycle; the next sector is
proposed from the history of that target.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field


class Technique(enum.StrEnum):
    RADIAL = "radial"
    SEQUENTIAL = "sequential"


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1, max_length=80)
    organ: str
    size_mm: float = Field(gt=0, le=300)
    depth_mm: float = Field(ge=0, le=400)
    injected: bool = True  # False: kept to watch the abscopal effect
    technique: Technique = Technique.RADIAL
    volume_ml: float = Field(default=0.0, ge=0, le=10)
    aliquots: int = Field(default=1, ge=1, le=12)
    sectors: int = Field(default=4, ge=2, le=12)

    def warnings(self) -> list[str]:
        """What the domain facts say to question (not refusals: the team decides)."""
        notes = []
        if self.size_mm < 10:
            notes.append("under 1 cm: hard to inject reproducibly")
        if self.size_mm > 50:
            notes.append("over 5 cm: inhomogeneous, hard to spread the drug")
        return notes


class Procedure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    case_ref: str = ""
    targets: list[Target]

    def injected_targets(self) -> list[Target]:
        return [t for t in self.targets if t.injected]


class Checklist(BaseModel):
    """The per-procedure checklist (domain facts); every item must be true to start."""

    model_config = ConfigDict(extra="forbid")

    luer_lock_confirmed: bool = False
    line_primed: bool = False
    needle_position_confirmed: bool = False
    drug_prepared_utc: datetime | None = None
    drug_stability_min: float | None = Field(default=None, gt=0)

    def missing(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(UTC)
        items = [
            (self.luer_lock_confirmed, "Luer-lock connection not confirmed"),
            (self.line_primed, "line not primed"),
            (self.needle_position_confirmed, "needle position not confirmed on imaging"),
        ]
        missing = [why for ok, why in items if not ok]
        if self.drug_prepared_utc is not None and self.drug_stability_min is not None:
            expires = self.drug_prepared_utc + timedelta(minutes=self.drug_stability_min)
            if now > expires:
                missing.append(f"drug past its stability window (expired {expires.isoformat()})")
        return missing


def next_sector(history: list[tuple[int, int]], sectors: int) -> tuple[int, int]:
    """(cycle, sector) for the next sequential injection: clockwise after the last one."""
    if not history:
        return 1, 1
    cycle, sector = max(history)
    return cycle + 1, sector % sectors + 1
