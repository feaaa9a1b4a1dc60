"""Whether a requested injection may be made at all, before anything reaches a pump.

The request's catalog ids are resolved once, here (the fluid path travels with the
injection, so nothing re-reads a catalog file between arming and RUN), and the limits
are checked with the rule and the numbers named. A case-bound request is checked against
its plan in ``procedure.cases``.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from controller.injection import InjectionRequest
from controller.procedure.catalog import (
    Syringe,
    load_drugs,
    load_lines,
    load_needles,
    load_syringes,
)
from controller.procedure.fluid_path import FluidPath
from controller.procedure.limits import (
    CheckedInjection,
    LimitRefused,
    LimitsConfig,
    check_injection,
    split_evenly,
)

T = TypeVar("T")


def fluid_path(request: InjectionRequest) -> FluidPath:
    """The request's syringe, line, needle and drug from the catalogs; ``ValueError`` names
    an unknown id and what the catalog has."""
    return FluidPath(
        _entry("syringe", request.syringe, load_syringes()),
        _entry("line", request.line, load_lines()),
        _entry("needle", request.needle, load_needles()),
        _entry("drug", request.drug, load_drugs()),
    )


def _entry(field: str, wanted: str, catalog: dict[str, T]) -> T:
    if wanted not in catalog:
        known = ", ".join(sorted(catalog))
        raise ValueError(f"{field}: unknown {field} {wanted!r} (the catalog has {known})")
    return catalog[wanted]


def admit(request: InjectionRequest, limits: LimitsConfig) -> tuple[CheckedInjection, FluidPath]:
    """The checked injection (split into fills) and its fluid path; ``LimitRefused`` or
    ``ValueError`` naming the field and the limit otherwise."""
    path = fluid_path(request)
    checked = check_injection(
        volume_ml=request.volume_ml,
        rate_ml_min=request.rate_ml_min,
        syringe=path.syringe,
        needle=path.needle,
        limits=limits,
        pressure_limit_mmhg=request.pressure_limit_mmhg,
        override_reason=request.override_reason,
    )
    if request.aliquots > 1:
        checked = with_aliquots(checked, request.aliquots, path.syringe)
    ceiling = request.pressure_ceiling_mmhg
    if ceiling is not None and ceiling >= checked.pressure_limit_mmhg:
        raise ValueError(
            f"pressure_ceiling_mmhg: {ceiling:g} must be under the pressure limit "
            f"{checked.pressure_limit_mmhg:g} mmHg"
        )
    return checked, path


def with_aliquots(checked: CheckedInjection, aliquots: int, syringe: Syringe) -> CheckedInjection:
    """Radial technique: one fill per needle position (each must fit in the syringe)."""
    parts = split_evenly(checked.volume_ml, aliquots)
    if max(parts) > syringe.nominal_volume_ml:
        raise LimitRefused("aliquot", f"aliquots of {max(parts):g} mL do not fit {syringe.id}")
    return dataclasses.replace(checked, fills_ml=parts)
