"""Tissue profiles and the fixed parts of the fluid path, from ``config/``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from controller.procedure.catalog import CONFIG_DIR, CatalogError, Identifier, load_entries
from simulator.plant.hydraulics import interpolate, poiseuille_resistance


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


class LineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    extension_length_mm: Annotated[float, Field(ge=0, le=5000)]
    extension_inner_diameter_mm: Annotated[float, Field(gt=0.1, le=10)]
    compliance_ul_per_mmhg: Annotated[float, Field(ge=0, le=50)]
    dome_compliance_ul_per_mmhg: Annotated[float, Field(ge=0, le=10)]
    transducer_height_cm: Annotated[float, Field(ge=-100, le=100)]


class PumpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stall_force_n: Annotated[float, Field(gt=0)]
    stopper_friction_n: Annotated[float, Field(ge=0)]


class PlantConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    syringe_compliance_ul_per_mmhg: dict[str, float]
    line: LineConfig
    pump: PumpConfig

    def syringe_table(self) -> dict[float, float]:
        return {float(k): v for k, v in self.syringe_compliance_ul_per_mmhg.items()}

    def line_compliance_ml_per_mmhg(self, syringe_nominal_ml: float) -> float:
        """Syringe and stopper, extension line and transducer dome, in mL/mmHg."""
        syringe_ul = interpolate(self.syringe_table(), syringe_nominal_ml)
        line = self.line
        return (syringe_ul + line.compliance_ul_per_mmhg + line.dome_compliance_ul_per_mmhg) * 1e-3

    def path_resistances(
        self, viscosity_cp: float, needle_length_mm: float, needle_inner_diameter_mm: float
    ) -> tuple[float, float]:
        """Hagen-Poiseuille of the needle and of the extension line, in mmHg*s/mL."""
        line = self.line
        return (
            poiseuille_resistance(viscosity_cp, needle_length_mm, needle_inner_diameter_mm),
            poiseuille_resistance(
                viscosity_cp, line.extension_length_mm, line.extension_inner_diameter_mm
            ),
        )


def load_tissues(path: Path = CONFIG_DIR / "tissues.toml") -> dict[str, Tissue]:
    return {t.id: t for t in load_entries(path, "tissue", _TissueFile)}


def load_plant_config(path: Path = CONFIG_DIR / "plant.toml") -> PlantConfig:
    try:
        with path.open("rb") as fh:
            return PlantConfig.model_validate(tomllib.load(fh))
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
