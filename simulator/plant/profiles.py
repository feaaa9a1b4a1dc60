"""Tissue profiles and the fixed parts of the fluid path, from ``config/``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from controller.procedure.catalog import CONFIG_DIR, CatalogError, Identifier, load_entries


class Tissue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    name: str
    interstitial_mmhg: Annotated[float, Field(ge=-20, le=100)]
    resistance_mmhg_per_ml_min: Annotated[float, Field(ge=0, le=5000)]
    growth_per_ml: Annotated[float, Field(ge=0, le=20)]
    compliance_ul_per_mmhg: Annotated[float, Field(ge=0, le=100)]
    critical_mmhg: Annotated[float, Field(gt=0)]
    tract_resistance_mmhg_per_ml_min: Annotated[float, Field(gt=0)]


class _TissueFile(BaseModel):
    tissue: list[Tissue]


class PumpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stall_force_n: Annotated[float, Field(gt=0)]
    stopper_friction_n: Annotated[float, Field(ge=0)]


class PlantConfig(BaseModel):
    """What the catalogs do not hold: where the transducer sits, and the pump's mechanics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transducer_height_cm: Annotated[float, Field(ge=-100, le=100)]
    pump: PumpConfig


def load_tissues(path: Path = CONFIG_DIR / "tissues.toml") -> dict[str, Tissue]:
    return {t.id: t for t in load_entries(path, "tissue", _TissueFile)}


def load_plant_config(path: Path = CONFIG_DIR / "plant.toml") -> PlantConfig:
    try:
        with path.open("rb") as fh:
            return PlantConfig.model_validate(tomllib.load(fh))
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
