"""A blocked needle, at the rates of issue 17's targets, on the simulator's plant (open loop)."""

from __future__ import annotations

import pytest

from controller.safety.line_model import (
    SPIKE_HOLD_S,
    TISSUE_GROWTH_MAX_PER_ML,
    TISSUE_MAX_MMHG_S_PER_ML,
    LineModel,
    LinePrior,
    LineState,
    RestReference,
)
from controller.safety.occlusion import (
    CLIMB_LEARNT_FLOOR_ENVELOPES,
    CLIMB_LEARNT_MARGIN,
    CLIMB_LEARNT_OFFSET_MMHG,
    Occlusion,
    healthy_ceiling_mmhg,
)
from controller.safety.verdict import VerdictKind
from simulator.plant.model import Plant
from simulator.plant.spread import TruthSpread
from tests.support.levelled_line import hold_cusum, levelled_line
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


def _levelled_line() -> LineModel:
    """Levelled, its rest's limit 10 mmHg, a blocked line climbing at 10 mmHg/s."""
    line = levelled_line()
    line.q_ml_s, line.c = 0.01, 1e-3
    return line


def test_the_up_cusum_is_tested_against_what_it_did_on_the_levelled_line() -> None:
    occlusion, line = Occlusion(), _levelled_line()
    occlusion.learn(breath_s=5.0)
    # listening: the rest's 10 mmHg
    assert hold_cusum(occlusion.on_block, line, 0.0, 5.0, up=2.0) is None
    assert occlusion.climb_limit_mmhg == pytest.approx(10.0)
    assert hold_cusum(occlusion.on_block, line, 5.0, 0.1, up=2.0) is None
    learnt = max(CLIMB_LEARNT_MARGIN * 2.0, CLIMB_LEARNT_FLOOR_ENVELOPES * 4.0)
    learnt += CLIMB_LEARNT_OFFSET_MMHG
    assert learnt < 10.0 and occlusion.climb_limit_mmhg == pytest.approx(learnt)
    verdict = hold_cusum(occlusion.on_block, line, 5.1, 1.0, up=learnt + 0.5)
    assert verdict is not None and verdict.kind is VerdictKind.OCCLUSION
    assert verdict.values["limit_mmhg"] == pytest.approx(learnt)


def test_an_upward_spike_brings_back_the_rest_limit_until_it_has_decayed() -> None:
    """One 10 ms step of +4 mmHg (a blocked line here climbs 0.1 mmHg in 10 ms) is a handling
    spike: for ``SPIKE_HOLD_S`` the CUSUM is held to the rest's limit, then to the learnt."""
    occlusion, line = Occlusion(), _levelled_line()
    occlusion.learn(breath_s=5.0)
    assert hold_cusum(occlusion.on_block, line, 0.0, 6.0, up=1.0) is None
    line.step_mmhg = 4.0
    assert hold_cusum(occlusion.on_block, line, 6.0, 0.3, up=9.0) is None  # under the rest's 10
    # the spike old: the learnt limit
    verdict = hold_cusum(occlusion.on_block, line, 6.3, 0.5, up=9.0)
    assert verdict is not None and verdict.values["limit_mmhg"] < 9.0
    assert 6.0 + SPIKE_HOLD_S <= verdict.t_mono_s <= 6.0 + SPIKE_HOLD_S + 0.1


def test_a_new_fill_listens_again() -> None:
    occlusion, line = Occlusion(), _levelled_line()
    occlusion.learn(breath_s=5.0)
    assert hold_cusum(occlusion.on_block, line, 0.0, 6.0, up=1.0) is None
    line.state = LineState.LEARNING  # the next fill's start
    occlusion.on_block(6.0, line)
    line.state = LineState.MONITORING
    # the rest's 10 mmHg again
    assert hold_cusum(occlusion.on_block, line, 30.0, 1.0, up=9.0) is None
