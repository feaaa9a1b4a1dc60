"""Limits: every refusal names the rule and the numbers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from controller.procedure.catalog import load_needles, load_syringes
from controller.procedure.limits import (
    CheckedInjection,
    LimitRefused,
    LimitsConfig,
    check_injection,
    split_fills,
)

SYRINGES, NEEDLES = load_syringes(), load_needles()


def _check(
    volume: float,
    rate: float,
    syringe: str = "bd-luerlok-5ml",
    needle: str = "22g-90mm",
    *,
    pressure_limit_mmhg: float | None = None,
    override_reason: str | None = None,
) -> CheckedInjection:
    return check_injection(
        volume_ml=volume,
        rate_ml_min=rate,
        syringe=SYRINGES[syringe],
        needle=NEEDLES[needle],
        limits=LimitsConfig(),
        pressure_limit_mmhg=pressure_limit_mmhg,
        override_reason=override_reason,
    )


@pytest.mark.parametrize(
    ("volume", "rate", "syringe", "rule", "numbers"),
    [
        (0.4, 1.0, "bd-luerlok-5ml", "volume", "0.4 mL is outside 0.5-10 mL"),
        (10.5, 1.0, "bd-luerlok-5ml", "volume", "10.5 mL"),
        (1.0, 0.01, "bd-luerlok-5ml", "rate", "0.01 mL/min is outside 0.05-5"),
        (1.0, 1.0, "bd-luerlok-10ml", "syringe_for_22g", "10 mL) with a 22G needle"),
        (1.0, 2.0, "bd-luerlok-1ml", "rate", "plunger speed range with bd-luerlok-1ml"),
    ],
)
def test_refusals_name_the_rule_and_numbers(
    volume: float, rate: float, syringe: str, rule: str, numbers: str
) -> None:
    with pytest.raises(LimitRefused) as info:
        _check(volume, rate, syringe)
    assert info.value.rule == rule and numbers in str(info.value)


def test_22g_rule_can_be_overridden_with_a_recorded_reason() -> None:
    checked = _check(8.0, 1.0, "bd-luerlok-10ml", override_reason="viscous drug, IR lead approved")
    assert checked.override_reason == "viscous drug, IR lead approved"
    with pytest.raises(LimitRefused):
        _check(8.0, 1.0, "bd-luerlok-10ml", override_reason="  ")


def test_volume_larger_than_the_syringe_becomes_refills() -> None:
    checked = _check(7.0, 1.0, "bd-luerlok-5ml")
    assert checked.fills_ml == (3.5, 3.5)
    assert split_fills(10.0, 3.0) == (2.5, 2.5, 2.5, 2.5)
    assert sum(split_fills(1.0, 0.3)) == pytest.approx(1.0)


def test_pressure_limit_and_narrower_configuration_only() -> None:
    with pytest.raises(LimitRefused, match="pressure_limit"):
        _check(1.0, 1.0, pressure_limit_mmhg=950.0)
    assert _check(1.0, 1.0, pressure_limit_mmhg=300.0).pressure_limit_mmhg == 300.0
    with pytest.raises(ValidationError):
        LimitsConfig(volume_max_ml=12.0)
    with pytest.raises(ValidationError):
        LimitsConfig(pressure_limit_mmhg=1200.0)
    narrow = LimitsConfig(volume_max_ml=5.0)
    with pytest.raises(LimitRefused, match=r"0\.5-5 mL"):
        check_injection(
            volume_ml=6.0,
            rate_ml_min=1.0,
            syringe=SYRINGES["bd-luerlok-5ml"],
            needle=NEEDLES["22g-90mm"],
            limits=narrow,
        )
