"""How far the simulated plant's truth sits from the catalog: drawn per scenario and seed.

The controller knows only the catalogs (``controller.procedure.fluid_path``). A real line
is never the catalog's: a syringe's stopper and the tubing are stiffer or softer, the
drug is warmer or colder (viscosity), the tumour is denser. Each scenario therefore draws
its truth around the catalog values from its seed, so the detectors always meet a line
they were not told about. A range ``(low, high)`` is drawn log-uniformly for factors and
uniformly for offsets; ``(x, x)`` pins it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

Range = tuple[float, float]


class TruthSpread(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    compliance_factor: Range = Field(
        default=(0.7, 1.4), description="syringe, line and dome against the catalog"
    )
    viscosity_factor: Range = Field(
        default=(0.9, 1.2), description="the drug against its catalog viscosity (temperature)"
    )
    tissue_resistance_factor: Range = Field(default=(0.7, 1.4))
    interstitial_factor: Range = Field(default=(0.7, 1.3))
    critical_factor: Range = Field(default=(1.0, 1.0), description="the tissue's cracking pressure")

    @model_validator(mode="after")
    def _positive_and_ordered(self) -> TruthSpread:
        for name in type(self).model_fields:
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name}: need 0 < low <= high, not ({low}, {high})")
        return self

    def draw(self, seed: int) -> PlantTruth:
        rng = random.Random(seed * 7_919 + 17)

        def factor(bounds: Range) -> float:
            low, high = bounds
            return math.exp(rng.uniform(math.log(low), math.log(high)))

        return PlantTruth(
            compliance_factor=factor(self.compliance_factor),
            viscosity_factor=factor(self.viscosity_factor),
            tissue_resistance_factor=factor(self.tissue_resistance_factor),
            interstitial_factor=factor(self.interstitial_factor),
            critical_factor=factor(self.critical_factor),
        )


PINNED = TruthSpread(
    compliance_factor=(1.0, 1.0),
    viscosity_factor=(1.0, 1.0),
    tissue_resistance_factor=(1.0, 1.0),
    interstitial_factor=(1.0, 1.0),
    critical_factor=(1.0, 1.0),
)


@dataclass(frozen=True)
class PlantTruth:
    """The drawn factors, recorded with the ground truth of a run."""

    compliance_factor: float = 1.0
    viscosity_factor: float = 1.0
    tissue_resistance_factor: float = 1.0
    interstitial_factor: float = 1.0
    critical_factor: float = 1.0
