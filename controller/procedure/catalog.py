"""Syringe and needle catalogs, loaded from TOML and validated with pydantic.

A bad entry stops the load with a message that names the file, the entry and
the field, because a wrong inner diameter silently scales every volume.
"""

from __future__ import annotations

import enum
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config import CATALOG_DIR
from drivers.ne1000_protocol import DIAMETER_MAX_MM, DIAMETER_MIN_MM

CONFIG_DIR = CATALOG_DIR  # a checkout's config/ or the installed package's own copy

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]*$", max_length=64)]


class Syringe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    manufacturer: str
    model: str
    nominal_volume_ml: Annotated[float, Field(gt=0, le=60)]
    inner_diameter_mm: Annotated[float, Field(ge=DIAMETER_MIN_MM, le=DIAMETER_MAX_MM)]
    compliance_ul_per_mmhg: Annotated[float, Field(gt=0, le=20)]
    luer_lock: bool


class Needle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    gauge: Annotated[int, Field(ge=10, le=34)]
    length_mm: Annotated[float, Field(gt=0, le=400)]
    inner_diameter_mm: Annotated[float, Field(gt=0.05, le=4)]
    coaxial: bool = False


class ConcentrationUnit(enum.StrEnum):
    MG_PER_ML = "mg/mL"
    PFU_PER_ML = "PFU/mL"  # plaque-forming units: oncolytic viruses
    CELLS_PER_ML = "cells/mL"  # cell therapies (CAR-T)
    PERCENT = "%"


class Drug(BaseModel):
    """A drug as the line sees it (viscosity) and as the case records it: its concentration,
    how long it may wait after preparation, and whether it is a virus (barrier precautions
    on the checklist)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    name: str
    viscosity_cp: Annotated[float, Field(gt=0.1, le=1000)]
    concentration: Annotated[float, Field(gt=0)] | None = None
    concentration_unit: ConcentrationUnit | None = None
    stability_min: Annotated[float, Field(gt=0, le=7 * 24 * 60)] | None = None
    virotherapy: bool = False


class Line(BaseModel):
    """The set between syringe and needle hub: extension line and transducer dome."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    name: str
    extension_length_mm: Annotated[float, Field(ge=0, le=5000)]
    extension_inner_diameter_mm: Annotated[float, Field(gt=0.1, le=10)]
    compliance_ul_per_mmhg: Annotated[float, Field(ge=0, le=50)]
    dome_compliance_ul_per_mmhg: Annotated[float, Field(ge=0, le=10)]


DEFAULT_LINE = "dpt-microbore-300mm"


class CatalogError(ValueError):
    """A catalog file is missing, unreadable or has a bad entry."""


class _SyringeFile(BaseModel):
    syringe: list[Syringe]


class _NeedleFile(BaseModel):
    needle: list[Needle]


class _DrugFile(BaseModel):
    drug: list[Drug]


class _LineFile(BaseModel):
    line: list[Line]


def _read(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc


def _explain(path: Path, key: str, exc: ValidationError, raw: dict[str, object]) -> CatalogError:
    first = exc.errors()[0]
    loc = first["loc"]
    entries = raw.get(key)
    where = ""
    if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(entries, list):
        entry = entries[loc[1]]
        entry_id = entry.get("id", "?") if isinstance(entry, dict) else "?"
        field = ".".join(str(p) for p in loc[2:])
        where = f" entry {loc[1] + 1} (id {entry_id!r}), field {field!r}"
    return CatalogError(f"{path}:{where}: {first['msg']}")


def _unique(path: Path, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise CatalogError(f"{path}: id {item!r} appears twice")
        seen.add(item)


def load_entries(path: Path, key: str, model: type[BaseModel]) -> list[Any]:
    """Entries under ``key`` in a TOML catalog, validated by ``model`` (a file model)."""
    raw = _read(path)
    try:
        entries: list[Any] = getattr(model.model_validate(raw), key)
    except ValidationError as exc:
        raise _explain(path, key, exc, raw) from None
    _unique(path, [e.id for e in entries])
    return entries


def load_syringes(path: Path = CONFIG_DIR / "syringes.toml") -> dict[str, Syringe]:
    return {s.id: s for s in load_entries(path, "syringe", _SyringeFile)}


def load_needles(path: Path = CONFIG_DIR / "needles.toml") -> dict[str, Needle]:
    return {n.id: n for n in load_entries(path, "needle", _NeedleFile)}


def load_drugs(path: Path = CONFIG_DIR / "drugs.toml") -> dict[str, Drug]:
    return {d.id: d for d in load_entries(path, "drug", _DrugFile)}


def load_lines(path: Path = CONFIG_DIR / "lines.toml") -> dict[str, Line]:
    return {line.id: line for line in load_entries(path, "line", _LineFile)}
