"""The plant against physics: Hagen-Poiseuille, Q/C, conservation, and each fault's signature."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from controller.procedure.catalog import DEFAULT_LINE, Drug, load_lines, load_needles, load_syringes
from controller.procedure.fluid_path import FluidPath
from simulator.offline import OfflineResult, run_offline
from simulator.plant import hydraulics as h
from simulator.plant.model import Plant, PlantParams
from simulator.plant.profiles import load_plant_config, load_tissues
from simulator.scenario import Scenario, load_scenario
from simulator.transducer_model import RAW_MAX

# domain facts section 2: pressure drop across the needle alone, mmHg
POISEUILLE_TABLE = [
    ("22g-38mm", 1.0, 1.0, 6.7),
    ("22g-38mm", 20.0, 10.0, 1331.0),
    ("22g-90mm", 1.0, 10.0, 158.0),
    ("22g-90mm", 5.0, 1.0, 79.0),
    ("22g-coaxial-150mm", 1.0, 0.1, 2.6),
    ("22g-coaxial-150mm", 5.0, 1.0, 131.0),
    ("22g-coaxial-150mm", 20.0, 1.0, 525.0),
]


def _plant(
    needle: str, viscosity_cp: float, tissue: str = "open-air", extension: bool = False
) -> Plant:
    line = load_lines()[DEFAULT_LINE]
    if not extension:
        line = line.model_copy(update={"extension_length_mm": 0.0})
    path = FluidPath(
        load_syringes()["bd-luerlok-5ml"],
        line,
        load_needles()[needle],
        Drug(id="test", name="test", viscosity_cp=viscosity_cp),
    )
    params = PlantParams.build(path=path, tissue=load_tissues()[tissue], config=load_plant_config())
    tau_s = params.c_line * (params.r_needle + params.r_extension)
    return Plant(params, max_step_s=max(tau_s / 200, 1e-4))


def _run_steady(plant: Plant, q_ml_min: float) -> None:
    p = plant.params
    tau_s = (p.c_line + p.c_tissue) * (p.r_needle + p.r_extension + p.r_tissue)
    duration_s = 12 * tau_s
    plant.advance_to(duration_s, q_ml_min * duration_s / 60.0)


@pytest.mark.parametrize(("needle", "viscosity_cp", "q_ml_min", "table_mmhg"), POISEUILLE_TABLE)
def test_steady_pressure_matches_hagen_poiseuille(
    needle: str, viscosity_cp: float, q_ml_min: float, table_mmhg: float
) -> None:
    plant = _plant(needle, viscosity_cp)
    _run_steady(plant, q_ml_min)
    assert plant.p_line == pytest.approx(table_mmhg, rel=0.05)


def test_extension_line_adds_its_own_poiseuille_drop() -> None:
    plant = _plant("22g-coaxial-150mm", 1.0, extension=True)
    _run_steady(plant, 1.0)
    line = load_lines()[DEFAULT_LINE]
    extension = h.poiseuille_resistance(
        1.0, line.extension_length_mm, line.extension_inner_diameter_mm
    )
    expected = (h.poiseuille_resistance(1.0, 150.0, 0.413) + extension) / 60.0
    assert plant.p_line == pytest.approx(expected, rel=0.01)


def test_occlusion_raises_pressure_at_q_over_c() -> None:
    plant = _plant("22g-coaxial-150mm", 1.0, tissue="liver")
    plant.advance_to(20.0, 20.0 / 60.0)  # 1 mL/min
    plant.occlusion = 1.0
    start_t, start_p = plant.t_s, plant.p_line
    plant.advance_to(start_t + 10.0, 10.0 / 60.0)
    slope = (plant.p_line - start_p) / 10.0
    q_ml_s = 1.0 / 60.0
    assert slope == pytest.approx(q_ml_s / plant.params.c_line, rel=0.05)
    # a 5 mL syringe with its line is stiffer than the 1.2-2.8 uL/mmHg of large syringes
    assert 10.0 < slope < 30.0


def test_delivered_volume_is_plunger_displacement_and_is_conserved() -> None:
    result = run_offline(load_scenario("normal-liver-saline-1ml"))
    truth = result.truth
    assert truth.last("delivered_ml") == pytest.approx(1.0, abs=1e-9)
    assert result.infused_ml == pytest.approx(1.0, abs=1e-9)
    p = load_scenario("normal-liver-saline-1ml").params()
    # the line starts at the tissue's pressure: what is stored is what rose above it
    stored = p.c_line * (truth.last("p_line_mmhg") - p.p_interstitial) + p.c_tissue * (
        truth.last("p_tip_mmhg") - p.p_interstitial
    )
    outflow = truth.last("tissue_ml") + truth.last("backflow_ml") + truth.last("leak_ml")
    assert truth.last("delivered_ml") == pytest.approx(outflow + stored, abs=1e-6)


@functools.cache
def _fault_free(name: str) -> OfflineResult:
    return run_offline(load_scenario(name).model_copy(update={"faults": []}))


def _with(name: str) -> tuple[Scenario, OfflineResult, OfflineResult]:
    """The fault scenario, its run, and the run of its fault-free twin (same seed)."""
    scenario = load_scenario(name)
    return scenario, run_offline(scenario), _fault_free(name)


def _at(result: OfflineResult, column: str, t_s: float) -> float:
    return result.truth.value_at(column, t_s)


def _onset(result: OfflineResult) -> float:
    return result.truth.onsets[0].t_s


def test_sudden_and_ramped_occlusion_signatures() -> None:
    _, sudden, normal = _with("fault-occlusion-sudden")
    t = _onset(sudden)
    assert _at(sudden, "p_line_mmhg", t + 10) - _at(normal, "p_line_mmhg", t + 10) > 100
    assert _at(sudden, "q_needle_ml_min", t + 1) == pytest.approx(0.0, abs=1e-9)
    _, ramp, _ = _with("fault-occlusion-ramp")
    t_ramp = _onset(ramp)
    rise_sudden = _at(sudden, "p_line_mmhg", t + 3) - _at(sudden, "p_line_mmhg", t)
    rise_ramp = _at(ramp, "p_line_mmhg", t_ramp + 3) - _at(ramp, "p_line_mmhg", t_ramp)
    assert 0 < rise_ramp < rise_sudden / 2


def test_partial_occlusion_settles_on_a_higher_plateau() -> None:
    _, partial, normal = _with("fault-partial-occlusion")
    t = _onset(partial) + 25
    assert _at(partial, "p_line_mmhg", t) > 1.5 * _at(normal, "p_line_mmhg", t)
    assert _at(partial, "q_needle_ml_min", t) == pytest.approx(1.0, rel=0.05)  # still flowing


def test_leak_collapses_pressure_to_atmosphere() -> None:
    _, leak, normal = _with("fault-leak-luer")
    t = _onset(leak)
    assert _at(leak, "p_line_mmhg", t + 3) < 10 < _at(normal, "p_line_mmhg", t + 3)
    assert leak.truth.last("leak_ml") > 0.5 * (leak.truth.last("delivered_ml") - 0.8)


def test_dislodged_needle_drops_the_resistance() -> None:
    _, out, normal = _with("fault-dislodged")
    t = _onset(out) + 5
    assert _at(out, "p_tip_mmhg", t) < 0.3 * _at(normal, "p_tip_mmhg", t)
    assert _at(out, "p_line_mmhg", t) < 0.7 * _at(normal, "p_line_mmhg", t)


def test_backflow_opens_the_tract_above_the_critical_pressure() -> None:
    _, back, normal = _with("fault-backflow")
    assert back.truth.last("backflow_ml") > 0.3 and normal.truth.last("backflow_ml") == 0
    tip = back.truth.arrays()["p_tip_mmhg"]
    assert tip.max() < 60 + 5  # capped near the new cracking pressure


def test_air_in_the_line_slows_the_pressure_rise() -> None:
    _, air, normal = _with("fault-air-in-line")
    start = load_scenario("fault-air-in-line").injection.start_s
    assert _at(air, "p_line_mmhg", start + 3) < 0.85 * _at(normal, "p_line_mmhg", start + 3)
    assert air.truth.last("delivered_ml") == pytest.approx(2.0)


@pytest.mark.parametrize("name", ["fault-sensor-open", "fault-sensor-saturated"])
def test_open_or_saturated_sensor_pins_the_adc(name: str) -> None:
    result = run_offline(load_scenario(name))
    after = result.raw_counts[result.sample_t_s > _onset(result) + 0.01]
    before = result.raw_counts[result.sample_t_s < _onset(result) - 0.01]
    assert np.all(after == RAW_MAX) and np.all(before < RAW_MAX)


def test_stuck_sensor_repeats_one_code_while_the_line_moves() -> None:
    result = run_offline(load_scenario("fault-sensor-stuck"))
    after = result.sample_t_s > _onset(result) + 0.01
    assert len(np.unique(result.raw_counts[after])) == 1
    line = result.truth.arrays()["p_line_mmhg"]
    assert line.max() - line[-1] > 10


def test_drift_and_noise_show_in_the_reading_not_in_the_line() -> None:
    scenario, drift, normal = _with("fault-sensor-drift")
    gain = scenario.transducer.model().counts_per_mmhg
    t = _onset(drift)
    end = drift.sample_t_s[-1]
    moved = (drift.raw_counts[-1000:].mean() - normal.raw_counts[-1000:].mean()) / gain
    assert moved == pytest.approx(20.0 * (end - t) / 60.0, rel=0.05)
    assert _at(drift, "p_line_mmhg", end) == pytest.approx(_at(normal, "p_line_mmhg", end))
    noisy = run_offline(load_scenario("fault-sensor-noisy"))
    window = (noisy.sample_t_s > _onset(noisy) + 1) & (noisy.sample_t_s < _onset(noisy) + 2)
    assert np.std(np.diff(noisy.raw_counts[window])) / gain / np.sqrt(2) == pytest.approx(
        15, rel=0.1
    )


def test_pump_stall_and_reset_stop_the_plunger() -> None:
    for name, alarm in (("fault-pump-stall", "A?S"), ("fault-pump-reset", "A?R")):
        result = run_offline(load_scenario(name))
        t = _onset(result)
        assert _at(result, "q_plunger_ml_min", t + 0.5) == 0.0, name
        assert result.truth.last("delivered_ml") < 0.5
        assert any(alarm in reply for reply in result.pump_replies[1:]), name


def test_link_faults_are_recorded_but_not_applied_offline() -> None:
    for name in ("fault-bridge-silence", "fault-bridge-garbage", "fault-pump-silence"):
        [onset] = run_offline(load_scenario(name)).truth.onsets
        assert onset.applied is False and onset.t_s == pytest.approx(11.0, abs=0.002)


def test_same_seed_same_run_and_another_seed_differs() -> None:
    scenario = load_scenario("normal-subcut-motion-spikes")
    first, second = run_offline(scenario), run_offline(scenario)
    for name, column in first.truth.arrays().items():
        assert np.array_equal(column, second.truth.arrays()[name]), name
    assert np.array_equal(first.raw_counts, second.raw_counts)
    other = run_offline(scenario.model_copy(update={"seed": scenario.seed + 1}))
    assert not np.array_equal(first.raw_counts, other.raw_counts)
    assert not np.array_equal(
        first.truth.arrays()["artifact_mmhg"], other.truth.arrays()["artifact_mmhg"]
    )


def test_artifacts_and_hydrostatic_offset_reach_the_transducer() -> None:
    lung = run_offline(load_scenario("normal-lung-virus-1ml")).truth.arrays()
    artifact = lung["artifact_mmhg"]
    assert 5.0 < artifact.max() < 6.0 + 1.5 + 1.0  # respiration 6, cardiac 1.5 and no spike
    spectrum = np.abs(np.fft.rfft(artifact - artifact.mean()))
    freqs = np.fft.rfftfreq(artifact.size, d=float(np.median(np.diff(lung["t_s"]))))
    assert freqs[int(np.argmax(spectrum))] == pytest.approx(0.3, abs=0.02)
    low = run_offline(load_scenario("normal-liver-transducer-low")).truth.arrays()
    offset = low["p_transducer_mmhg"] - low["p_line_mmhg"] - low["artifact_mmhg"]
    assert np.allclose(offset, 10 * h.WATER_MMHG_PER_CM)
