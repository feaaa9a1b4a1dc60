"""A case: one subject's procedure in one cycle, its plan, and what the plan allows.

The plan names every lesion, injected or deliberately not (kept to watch the abscopal
effect), with its organ and risk flags, size and depth, technique (radial aliquots from
one entry point, or one sector a cycle, clockwise), planned volume and its drugs in their
predefined order. ``refusal`` says why an injection may not be made on this plan, or
None: a lesion not in the plan or not to be injected, a drug not planned for the lesion
or out of its order, a volume beyond what the plan has left, a drug without a recorded
preparation or past its stability window, and a biopsy-gauge needle without a biopsy.
Pure: the case book (``casebook.py``) reads the record and calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controller.procedure.catalog import Drug, Needle
from controller.procedure.limits import split_evenly
from controller.procedure.plan import Technique

BIOPSY_GAUGE = 18  # 17-18G coaxial needles only when a biopsy is taken (domain facts 1)
MIN_INJECTED_ML, MAX_INJECTED_ML = 0.5, 10.0
VOLUME_SLACK_ML = 1e-6
FINAL_STATES = ("completed", "stopped", "alarm", "interrupted")


class CaseCreate(BaseModel):
    """POST /cases: the subject by pseudonym (never a name), the cycle, and optional study
    details."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    cycle: int = Field(ge=1, le=100)
    study: str = Field(default="", max_length=80)
    visit: str = Field(default="", max_length=80)
    date: str = Field(default="", max_length=10, pattern=r"^(\d{4}-\d{2}-\d{2})?$")
    notes: str = Field(default="", max_length=2000)


class Lesion(BaseModel):
    model_config = ConfigDict(extra="allow")

    label: str = Field(min_length=1, max_length=80)
    injected: bool
    organ: str = Field(min_length=1, max_length=40)
    size_mm: float = Field(gt=0, le=300)
    depth_mm: float = Field(ge=0, le=400)
    technique: Technique = Technique.RADIAL
    volume_ml: float = Field(default=0.0, ge=0, le=MAX_INJECTED_ML)
    drugs: list[str] = Field(default_factory=list, max_length=6)  # in the order they are given
    aliquots: int = Field(default=1, ge=1, le=12)  # radial: needle positions
    sectors: int = Field(default=4, ge=2, le=12)  # sequential: sectors around the tumour
    biopsy: bool = False  # a biopsy in this procedure (allows a 17-18G coaxial needle)
    subcapsular: bool = False
    exophytic: bool = False
    vessel_encasement_mm: float | None = Field(default=None, ge=0, le=50)
    intravascular_invasion: bool = False

    @model_validator(mode="after")
    def _injected_has_dose(self) -> Lesion:
        if self.injected:
            if not MIN_INJECTED_ML <= self.volume_ml <= MAX_INJECTED_ML:
                raise ValueError(
                    f"volume_ml: {self.volume_ml:g} mL for injected lesion {self.label!r} "
                    f"must be {MIN_INJECTED_ML:g}-{MAX_INJECTED_ML:g} mL"
                )
            if not self.drugs:
                raise ValueError(f"drugs: injected lesion {self.label!r} needs at least one")
        elif self.drugs or self.volume_ml:
            raise ValueError(f"drugs, volume_ml: lesion {self.label!r} is planned as not injected")
        if len(set(self.drugs)) != len(self.drugs):
            raise ValueError(f"drugs: each drug once per lesion ({self.label!r})")
        return self

    def warnings(self) -> list[str]:
        """What the review says to question (the team decides; nothing is refused)."""
        notes = []
        if self.size_mm < 10:
            notes.append("under 1 cm: hard to inject reproducibly")
        if self.size_mm > 50:
            notes.append("over 5 cm: inhomogeneous, hard to spread the drug")
        if self.organ == "liver" and (self.subcapsular or self.exophytic):
            notes.append("subcapsular or exophytic liver lesion: to be avoided")
        if self.vessel_encasement_mm is not None and self.vessel_encasement_mm > 3:
            notes.append("encases a vessel over 3 mm: to be avoided")
        if self.intravascular_invasion:
            notes.append("intravascular invasion: to be avoided")
        if self.organ == "lung" and self.depth_mm > 50:
            notes.append("deep lung lesion: needle accuracy falls, pneumothorax risk rises")
        elif self.depth_mm > 100:
            notes.append("deep lesion: needle accuracy falls with depth")
        return notes

    def aliquots_ml(self) -> list[float]:
        return list(split_evenly(self.volume_ml, self.aliquots)) if self.injected else []


class CasePlan(BaseModel):
    """PUT /cases/{id}/plan."""

    model_config = ConfigDict(extra="allow")

    lesions: list[Lesion] = Field(min_length=1, max_length=20)

    @field_validator("lesions")
    @classmethod
    def _unique_labels(cls, lesions: list[Lesion]) -> list[Lesion]:
        labels = [lesion.label for lesion in lesions]
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be unique within a case")
        return lesions

    def lesion(self, label: str) -> Lesion | None:
        return next((lesion for lesion in self.lesions if lesion.label == label), None)


class DrugPreparation(BaseModel):
    """POST /cases/{id}/drugs: a drug prepared for this case."""

    model_config = ConfigDict(extra="forbid")

    drug: str = Field(min_length=1, max_length=64)
    lot: str = Field(min_length=1, max_length=64)
    prepared_utc: datetime
    prepared_volume_ml: float = Field(gt=0, le=100)
    stability_min: float | None = Field(default=None, gt=0, le=7 * 24 * 60)  # else catalog's

    @field_validator("prepared_utc")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time zone (e.g. 2026-12-02T09:30:00Z)")
        return value

    def expires(self, drug: Drug) -> datetime | None:
        minutes = self.stability_min or drug.stability_min
        return None if minutes is None else self.prepared_utc + timedelta(minutes=minutes)


@dataclass(frozen=True)
class Given:
    """An injection already bound to this case, as the record has it."""

    lesion: str
    drug: str
    state: str
    volume_ml: float
    delivered_ml: float

    @property
    def counted_ml(self) -> float:
        """What it takes from the plan: what it delivered once ended, all it asked before."""
        return self.delivered_ml if self.state in FINAL_STATES else self.volume_ml


@dataclass(frozen=True)
class Asked:
    lesion: str
    drug: Drug
    needle: Needle
    volume_ml: float


def refusal(
    plan: CasePlan | None,
    asked: Asked,
    given: Sequence[Given],
    preparations: dict[str, DrugPreparation],
    now: datetime | None = None,
) -> str | None:
    """Why this injection may not be made on this plan (None: it may)."""
    if plan is None:
        return "the case has no plan yet: PUT /cases/{id}/plan first"
    lesion = plan.lesion(asked.lesion)
    if lesion is None:
        planned = ", ".join(repr(item.label) for item in plan.lesions)
        return f"lesion {asked.lesion!r} is not in the case's plan (planned: {planned})"
    if not lesion.injected:
        return (
            f"lesion {lesion.label!r} is planned as not injected (watched for the abscopal effect)"
        )
    mine = [g for g in given if g.lesion == lesion.label]
    return (
        _drug_order(lesion, asked.drug.id, mine)
        or _volume_left(lesion, asked.volume_ml, mine)
        or _prepared(asked.drug, preparations, now or datetime.now(UTC))
        or _needle(lesion, asked.needle)
    )


def _drug_order(lesion: Lesion, drug: str, mine: Sequence[Given]) -> str | None:
    if drug not in lesion.drugs:
        return f"drug {drug!r} is not planned for lesion {lesion.label!r} (planned: {lesion.drugs})"
    k = lesion.drugs.index(drug)
    given = {g.drug for g in mine if g.state in FINAL_STATES and g.delivered_ml > 0}
    missing = [d for d in lesion.drugs[:k] if d not in given]
    if missing:
        return (
            f"drug {drug!r} comes after {missing[0]!r} for lesion {lesion.label!r}; give that first"
        )
    later = [d for d in lesion.drugs[k + 1 :] if d in given]
    if later:
        return f"drug {drug!r} comes before {later[0]!r}, already given to lesion {lesion.label!r}"
    return None


def _volume_left(lesion: Lesion, volume_ml: float, mine: Sequence[Given]) -> str | None:
    left = lesion.volume_ml - sum(g.counted_ml for g in mine)
    if volume_ml > left + VOLUME_SLACK_ML:
        return (
            f"volume {volume_ml:g} mL is more than lesion {lesion.label!r} has left: "
            f"{max(0.0, left):.3g} of {lesion.volume_ml:g} mL planned"
        )
    return None


def _prepared(drug: Drug, preparations: dict[str, DrugPreparation], now: datetime) -> str | None:
    preparation = preparations.get(drug.id)
    if preparation is None:
        return f"drug {drug.id!r} has no preparation recorded for this case (lot, time, volume)"
    expires = preparation.expires(drug)
    if expires is not None and now > expires:
        return (
            f"drug {drug.id!r} (lot {preparation.lot}) is past its stability window: "
            f"expired {expires.isoformat(timespec='minutes')}"
        )
    return None


def _needle(lesion: Lesion, needle: Needle) -> str | None:
    if needle.gauge <= BIOPSY_GAUGE and not lesion.biopsy:
        return (
            f"needle {needle.id!r} ({needle.gauge}G) is for a biopsy in the same procedure; "
            f"lesion {lesion.label!r} has none planned: use a 22G coaxial needle"
        )
    return None
