"""The fluid path as the catalogs describe it: syringe, line and dome, needle, drug.

What a controller can know before it starts: the nominal compliance of what holds the
drug under pressure, and the Hagen-Poiseuille resistance of the needle and the extension
line for the drug's viscosity. The controller's line prior comes from here (and is then
corrected by what it measures); the simulator draws its true plant around these values.

Units: pressure mmHg, volume mL, time s, resistance mmHg*s/mL, compliance mL/mmHg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.procedure.catalog import (
    Drug,
    Line,
    Needle,
    Syringe,
    load_drugs,
    load_lines,
    load_needles,
    load_syringes,
)

PA_PER_MMHG = 133.322
ML_PER_M3 = 1e6


def poiseuille_resistance(viscosity_cp: float, length_mm: float, inner_diameter_mm: float) -> float:
    """Hagen-Poiseuille, R = 8 mu L / (pi r^4), in mmHg*s/mL."""
    mu_pa_s = viscosity_cp * 1e-3
    length_m = length_mm * 1e-3
    radius_m = inner_diameter_mm * 0.5e-3
    r_pa_s_per_m3 = 8.0 * mu_pa_s * length_m / (math.pi * radius_m**4)
    return r_pa_s_per_m3 / ML_PER_M3 / PA_PER_MMHG


@dataclass(frozen=True)
class FluidPath:
    syringe: Syringe
    line: Line
    needle: Needle
    drug: Drug

    @classmethod
    def from_ids(cls, syringe: str, line: str, needle: str, drug: str) -> FluidPath:
        """From catalog ids; ``KeyError`` names a missing one."""
        return cls(
            load_syringes()[syringe], load_lines()[line], load_needles()[needle], load_drugs()[drug]
        )

    @property
    def compliance_ml_per_mmhg(self) -> float:
        """Syringe and stopper, extension line and transducer dome (nominal)."""
        line = self.line
        total_ul = (
            self.syringe.compliance_ul_per_mmhg
            + line.compliance_ul_per_mmhg
            + line.dome_compliance_ul_per_mmhg
        )
        return total_ul * 1e-3

    @property
    def needle_resistance(self) -> float:
        needle = self.needle
        return poiseuille_resistance(
            self.drug.viscosity_cp, needle.length_mm, needle.inner_diameter_mm
        )

    @property
    def extension_resistance(self) -> float:
        line = self.line
        return poiseuille_resistance(
            self.drug.viscosity_cp, line.extension_length_mm, line.extension_inner_diameter_mm
        )

    @property
    def resistance(self) -> float:
        """Needle and extension line in series: what the drug must pass before the tissue."""
        return self.needle_resistance + self.extension_resistance
