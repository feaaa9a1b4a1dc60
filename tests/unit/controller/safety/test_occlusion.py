"""A blocked needle, at the rates of issue 17's targets, on the simulator's plant (open loop)."""

from __future__ import annotations

import pytest

from controller.safety.line_model import (
    TISSUE_GROWTH_MAX_PER_ML,
    TISSUE_MAX_MMHG_S_PER_ML,
    LineModel,
    LinePrior,
    RestReference,
)
from controller.safety.occlusion import healthy_ceiling_mmhg
from controller.safety.verdict import VerdictKind
from simulator.plant.model import Plant
from simulator.plant.spread import TruthSpread
from tests.support.line_signal import LineCase, feed, latency


def block(plant: Plant) -> None:
    plant.occlusion = 1.0


SOFT_LINE = TruthSpread(
    compliance_factor=(1.6, 1.6),  # the real line 60 % softer than the catalog says
    viscosity_factor=(1.0, 1.0),
    tissue_resistance_factor=(1.0, 1.0),
    interstitial_factor=(1.0, 1.0),
)


@pytest.mark.parametrize(("rate_ml_min", "within_s"), [(0.2, 3.0), (1.0, 1.0), (5.0, 0.3)])
def test_an_occlusion_is_found_within_its_target(rate_ml_min: float, within_s: float) -> None:
    """One plant per rate, its blockage 15 s into the fill. At 1 mL/min the latency hangs on
    where in a breath the blockage falls: 0.9-1.3 s for rests of 11 to 15 s before the
    start (session 27); the population's p95 (``bench/detection_bench.py``) is the figure."""
    case = LineCase(rate_ml_min=rate_ml_min, fault_s=15.0, fault=block, run_s=40.0)
    verdict, _ = feed(case)
    assert verdict is not None and verdict.kind is VerdictKind.OCCLUSION, verdict
    found = latency(case, verdict)
    assert found is not None and 0.0 < found < within_s, found


def test_on_a_line_softer_than_the_catalog_the_compliance_is_measured_and_used() -> None:
    case = LineCase(rate_ml_min=1.0, truth=SOFT_LINE, fault_s=15.0, fault=block, run_s=40.0)
    verdict, supervisor = feed(case)
    catalog = supervisor.prior.compliance_ml_per_mmhg
    assert supervisor.compliance.measured
    assert supervisor.compliance.value / catalog == pytest.approx(1.6, rel=0.2)
    found = latency(case, verdict)
    assert verdict is not None and verdict.kind is VerdictKind.OCCLUSION
    assert found is not None and found < 1.5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_healthy_injection_through_breathing_and_pulse_raises_nothing(seed: int) -> None:
    verdict, supervisor = feed(LineCase(rate_ml_min=1.0, run_s=50.0, seed=seed))
    assert verdict is None, verdict
    assert str(supervisor.line.state) == "monitoring"


def test_the_highest_a_healthy_line_stands_grows_with_what_the_tissue_has_taken() -> None:
    """The stiffest tissue's resistance grows as it fills (the catalog's lymph node by 1.2
    per mL): a second aliquot into a node swollen by the first stood, healthy, above the
    ungrown bound while climbing (population normal #145)."""
    q_ml_s = 0.5 / 60.0

    def ceiling(injected_ml: float) -> float:
        line = LineModel()
        line.start(
            0.0,
            q_ml_s,
            reference=RestReference(10.0, 4.0),
            prior=LinePrior(1e-3, 1500.0),
            compliance_ml_per_mmhg=1e-3,
            now_mmhg=10.0,
            rest_excursions=None,
            injected_ml=injected_ml,
        )
        return healthy_ceiling_mmhg(line)

    grown = ceiling(0.8) - ceiling(0.0)
    expected = 0.5 * q_ml_s * TISSUE_MAX_MMHG_S_PER_ML * TISSUE_GROWTH_MAX_PER_ML * 0.8
    assert grown == pytest.approx(expected)
