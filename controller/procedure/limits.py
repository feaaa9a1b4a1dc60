"""Injection limits: what may be asked of the pump, and why a request is refused.

Every refusal is a ``LimitRefused`` naming the rule and the numbers, because the
operator has to fix the request, not guess at it. The configured limits can only be
narrower than the clinical ones (0.5-10 mL per injection; 1000 mmHg at most).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.procedure.catalog import Needle, Syringe
from drivers.ne1000_protocol import rate_limits_ml_min

CLINICAL_VOLUME_ML = (0.5, 10.0)
PRESSURE_LIMIT_MAX_MMHG = 1000.0
LUER_22G_MAX_SYRINGE_ML = 5.0


class LimitRefused(ValueError):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule


class LimitsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    volume_min_ml: float = Field(default=0.5, ge=CLINICAL_VOLUME_ML[0])
    volume_max_ml: float = Field(default=10.0, le=CLINICAL_VOLUME_ML[1])
    rate_min_ml_min: float = Field(default=0.05, gt=0)
    rate_max_ml_min: float = Field(default=5.0, gt=0, le=20.0)
    pressure_limit_mmhg: float = Field(default=900.0, gt=50, le=PRESSURE_LIMIT_MAX_MMHG)

    @model_validator(mode="after")
    def _ordered(self) -> LimitsConfig:
        if self.volume_min_ml > self.volume_max_ml or self.rate_min_ml_min > self.rate_max_ml_min:
            raise ValueError("a minimum is above its maximum")
        return self


@dataclass(frozen=True)
class CheckedInjection:
    """A request that passed every rule, split into syringe fills."""

    volume_ml: float
    rate_ml_min: float
    fills_ml: tuple[float, ...]  # more than one: the syringe is changed between them
    pressure_limit_mmhg: float
    override_reason: str | None


def check_injection(
    *,
    volume_ml: float,
    rate_ml_min: float,
    syringe: Syringe,
    needle: Needle,
    limits: LimitsConfig,
    pressure_limit_mmhg: float | None = None,
    override_reason: str | None = None,
) -> CheckedInjection:
    _check_volume(volume_ml, limits)
    _check_rate(rate_ml_min, syringe, limits)
    if not syringe.luer_lock:
        raise LimitRefused("luer_lock", f"syringe {syringe.id} is not Luer-lock")
    _check_syringe_for_needle(syringe, needle, override_reason)
    limit = limits.pressure_limit_mmhg if pressure_limit_mmhg is None else pressure_limit_mmhg
    if not 50 < limit <= limits.pressure_limit_mmhg:
        raise LimitRefused(
            "pressure_limit",
            f"{limit:g} mmHg is outside 50-{limits.pressure_limit_mmhg:g} mmHg",
        )
    return CheckedInjection(
        volume_ml,
        rate_ml_min,
        split_fills(volume_ml, syringe.nominal_volume_ml),
        limit,
        override_reason,
    )


def _check_volume(volume_ml: float, limits: LimitsConfig) -> None:
    if not limits.volume_min_ml <= volume_ml <= limits.volume_max_ml:
        raise LimitRefused(
            "volume",
            f"{volume_ml:g} mL is outside {limits.volume_min_ml:g}-{limits.volume_max_ml:g} mL "
            "per injection",
        )


def _check_rate(rate_ml_min: float, syringe: Syringe, limits: LimitsConfig) -> None:
    pump_low, pump_high = rate_limits_ml_min(syringe.inner_diameter_mm)
    low, high = max(limits.rate_min_ml_min, pump_low), min(limits.rate_max_ml_min, pump_high)
    if not low <= rate_ml_min <= high:
        raise LimitRefused(
            "rate",
            f"{rate_ml_min:g} mL/min is outside {low:.4g}-{high:.4g} mL/min (configuration "
            f"{limits.rate_min_ml_min:g}-{limits.rate_max_ml_min:g}; plunger speed range with "
            f"{syringe.id} {pump_low:.4g}-{pump_high:.4g})",
        )


def _check_syringe_for_needle(syringe: Syringe, needle: Needle, override: str | None) -> None:
    too_big = needle.gauge >= 22 and syringe.nominal_volume_ml > LUER_22G_MAX_SYRINGE_ML
    if too_big and not (override and override.strip()):
        raise LimitRefused(
            "syringe_for_22g",
            f"{syringe.id} ({syringe.nominal_volume_ml:g} mL) with a {needle.gauge}G needle: "
            f"syringes over {LUER_22G_MAX_SYRINGE_ML:g} mL are refused with 22G unless "
            "overridden with a recorded reason",
        )


def split_fills(volume_ml: float, capacity_ml: float) -> tuple[float, ...]:
    """Equal fills no larger than the syringe, so each change comes at a predictable point."""
    return split_evenly(volume_ml, max(1, math.ceil(volume_ml / capacity_ml - 1e-9)))


def split_evenly(volume_ml: float, parts: int) -> tuple[float, ...]:
    """The volume in ``parts`` equal parts (to the microlitre's thousandth); the last takes
    the rounding, so the parts always add up to the volume. Fills and aliquots both."""
    each = round(volume_ml / parts, 6)
    first = [each] * (parts - 1)
    return (*first, round(volume_ml - sum(first), 6))
