"""The scenario library: loads, covers every fault, and its normal injections are normal."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.procedure.catalog import CatalogError, load_drugs
from simulator.offline import run_offline
from simulator.scenario import FAULT_KINDS, load_scenario, scenario_library

LIBRARY = {name: load_scenario(path) for name, path in scenario_library().items()}
NORMAL = sorted(name for name, s in LIBRARY.items() if not s.faults)


def test_library_covers_every_fault_and_ten_varied_normal_injections() -> None:
    covered = {f.kind for s in LIBRARY.values() for f in s.faults}
    assert covered == set(FAULT_KINDS)
    normal = [LIBRARY[n] for n in NORMAL]
    assert len(normal) >= 10
    assert len({s.injection.rate_ml_min for s in normal}) >= 5
    assert len({s.injection.volume_ml for s in normal}) >= 5
    assert len({load_drugs()[s.drug].viscosity_cp for s in normal}) >= 5
    assert {s.tissue for s in normal} >= {"liver", "lymph-node", "subcutaneous", "lung"}
    assert all(s.artifacts.respiration_mmhg > 0 for s in normal if s.tissue != "open-air")
    assert all(s.expect == "complete" for s in normal)


@pytest.mark.parametrize("name", NORMAL)
def test_normal_injections_deliver_their_dose_without_a_fault(name: str) -> None:
    scenario = LIBRARY[name]
    result = run_offline(scenario)
    arrays = result.truth.arrays()
    assert result.truth.last("delivered_ml") == pytest.approx(scenario.injection.volume_ml)
    assert result.truth.last("backflow_ml") == 0.0 and result.truth.last("leak_ml") == 0.0
    assert arrays["p_tip_mmhg"].max() < scenario.params().p_critical
    assert not [r for r in result.pump_replies[1:] if "A?" in r]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('syringe = "bd-luerlok-7ml"', "syringe 'bd-luerlok-7ml' is not in the catalog"),
        ("[[faults]]\nkind = 'meteor'\nat_s = 1", "faults.0.kind"),
        ("[[faults]]\nkind = 'leak'", "exactly one of at_s"),
    ],
)
def test_a_bad_scenario_names_the_file_and_the_field(tmp_path: Path, text: str, why: str) -> None:
    base = scenario_library()["normal-liver-saline-1ml"].read_text()
    if text.startswith("syringe"):
        body = base.replace('syringe = "bd-luerlok-5ml"', text)
    else:
        body = base + "\n" + text + "\n"
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(CatalogError, match=r"bad\.toml") as info:
        load_scenario(path)
    assert why in str(info.value)
