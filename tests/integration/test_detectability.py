"""The detectability bench measures a fault's own move at the transducer, from physics."""

from __future__ import annotations

import pytest

from bench.detectability import signature
from bench.population import draw

pytestmark = pytest.mark.virtual_clock  # no wall-clock deadline: runs beside other tests


def test_a_blocked_line_climbs_away_from_its_twin_at_q_over_c() -> None:
    """Nothing leaves a blocked line: it climbs at Q/C above where the same plant without
    the occlusion stands (population occlusion@5 #1, its true compliance)."""
    scenario = draw("occlusion@5", 1).scenario
    c_line = scenario.build_plant(t0_s=0.0).params.c_line
    q_over_c = scenario.injection.rate_ml_min / 60.0 / c_line
    found = signature("occlusion@5", 1)
    assert found.onset_s is not None
    assert found.mmhg[0.25] == pytest.approx(0.25 * q_over_c, rel=0.2)
    assert found.mmhg[1.0] == pytest.approx(4.0 * found.mmhg[0.25], rel=0.1)
    # and at the class's own target (0.3 s), which the report counts against the breathing
    assert found.mmhg[0.3] == pytest.approx(1.2 * found.mmhg[0.25], rel=0.1)
    assert found.breathing_pp_mmhg == pytest.approx(2.0 * scenario.artifacts.respiration_mmhg)
