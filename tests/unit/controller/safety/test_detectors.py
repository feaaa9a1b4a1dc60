"""Each detector on its own, then the supervisor closed-loop on the simulator's physics."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.safety.detectors import (
    Conditioner,
    OverPressure,
    SensorNoise,
    SensorSamples,
)
from controller.safety.line_model import SlidingSlope
from controller.safety.supervisor import Supervisor, SupervisorConfig
from controller.safety.verdict import Verdict
from drivers.transducer import BridgeEvent
from firmware_bridge.messages import StatusFlag, Trip, TripReason
from simulator.closed_loop import run_closed_loop
from simulator.scenario import load_scenario


def test_over_pressure_needs_two_samples_in_a_row() -> None:
    detector = OverPressure(300.0)
    assert detector.on_sample(0.000, 301.0) is None
    assert detector.on_sample(0.001, 299.0) is None  # a single sample is a glitch
    assert detector.on_sample(0.002, 301.0) is None
    verdict = detector.on_sample(0.003, 302.0)
    assert verdict is not None and verdict.kind == "over_pressure" and verdict.t_mono_s == 0.003


def test_sensor_samples_rail_stuck_and_step() -> None:
    detector = SensorSamples(stuck_s=0.05)
    assert detector.on_sample(0.0, 10.0, 1000) is None
    rail = detector.on_sample(0.001, 1500.0, 2**23 - 1)
    assert rail is not None and "full scale" in rail.detail
    stuck = SensorSamples(stuck_s=0.05)
    verdicts = [stuck.on_sample(k / 1000, 10.0, 5000) for k in range(60)]
    assert verdicts[49] is None and verdicts[50] is not None and "frozen" in verdicts[50].detail
    step = SensorSamples()
    step.on_sample(0.0, 10.0, 1)
    jump = step.on_sample(0.001, 200.0, 2)
    assert jump is not None and "implausible step" in jump.detail


def test_conditioner_median_rejects_a_handling_spike() -> None:
    conditioner = Conditioner()
    filtered = []
    for k in range(1000):
        t = k / 1000
        spike = 30.0 * math.exp(-(t - 0.5) / 0.08) if t >= 0.5 else 0.0
        if conditioner.add(20.0 + spike):
            filtered.append(conditioner.filtered)
    assert max(filtered) < 20.0 + 30.0 * 0.35  # the raw spike peaks at 50 mmHg


def test_noise_detector_persists_before_it_speaks() -> None:
    rng = random.Random(1)
    conditioner, detector = Conditioner(), SensorNoise(max_sd_mmhg=3.0, persist_s=0.3)
    verdicts: list[Verdict | None] = []
    for k in range(2000):
        sd = 0.2 if k < 1000 else 10.0
        if conditioner.add(rng.gauss(50.0, sd)):
            verdicts.append(detector.on_block(k / 1000, conditioner))
    first = next(i for i, v in enumerate(verdicts) if v is not None)
    assert 100 < first < 200  # after the noise starts (block 100) and its persistence


def test_bridge_events_become_the_contracts_alarm_kinds() -> None:
    verdicts: list[Verdict] = []
    cases = [
        (BridgeEvent("link_lost", 1.0, "no sample for 20 ms"), "link_lost"),
        (
            BridgeEvent("status", 1.0, "x", flags=StatusFlag.SENSOR_OPEN | StatusFlag.STREAMING),
            "sensor_fault",
        ),
        (BridgeEvent("trip", 1.0, "x", trip=Trip(TripReason.OVER_LIMIT, 1, 1)), "over_pressure"),
        (BridgeEvent("trip", 1.0, "x", trip=Trip(TripReason.WATCHDOG, 1, 1)), "link_lost"),
        (BridgeEvent("rebooted", 1.0, "x"), "link_lost"),
    ]
    for event, kind in cases:
        supervisor = Supervisor(SupervisorConfig(), verdicts.append)
        supervisor.on_bridge_event(event)
        assert verdicts[-1].kind == kind
    quiet = Supervisor(SupervisorConfig(), verdicts.append)
    before = len(verdicts)
    quiet.on_bridge_event(BridgeEvent("status", 1.0, "x", flags=StatusFlag.STREAMING))
    quiet.on_bridge_event(BridgeEvent("trip", 1.0, "x", trip=Trip(TripReason.HOST_COMMAND, 1, 1)))
    assert len(verdicts) == before


def test_verdicts_latch_until_acknowledged_and_volume_disagreement_is_a_pump_fault() -> None:
    verdicts: list[Verdict] = []
    supervisor = Supervisor(SupervisorConfig(), verdicts.append)
    supervisor.on_delivery(10.0, 0.100, 0.105)  # within 20 uL
    assert not verdicts
    supervisor.on_delivery(10.0, 0.050, 0.200)
    supervisor.on_pump_lost(11.0, "timeout")
    assert [v.kind for v in verdicts] == ["pump_fault"]
    assert supervisor.acknowledge() is not None
    supervisor.on_pump_lost(12.0, "timeout")
    assert [v.kind for v in verdicts] == ["pump_fault", "link_lost"]


def _model(stop):  # type: ignore[no-untyped-def]
    return Supervisor(SupervisorConfig(), stop)


@pytest.mark.parametrize(
    ("scenario", "kind", "within_s"),
    [
        ("fault-occlusion-sudden", "occlusion", 1.6),
        ("fault-leak-luer", "leak", 0.25),
        ("fault-dislodged", "leak", 1.2),
        ("fault-sensor-open", "sensor_fault", 0.05),
        ("fault-pump-stall", "pump_fault", 0.05),
    ],
)
def test_supervisor_catches_the_fault_against_its_true_onset(
    scenario: str, kind: str, within_s: float
) -> None:
    result = run_closed_loop(load_scenario(scenario), _model)
    assert result.verdict is not None and result.verdict.kind == kind, result.verdict
    assert result.latency_s is not None and 0 <= result.latency_s < within_s


@pytest.mark.parametrize(
    "scenario",
    [
        "normal-liver-saline-1ml",
        "normal-lung-virus-1ml",
        "normal-lung-deep-breathing-1ml",
        "normal-subcut-motion-spikes",
    ],
)
def test_no_false_alarm_through_breathing_heartbeat_and_handling(scenario: str) -> None:
    result = run_closed_loop(load_scenario(scenario), _model, seed=4)
    assert result.verdict is None, result.verdict
    assert result.delivered_ml == pytest.approx(load_scenario(scenario).injection.volume_ml)


def test_a_downward_handling_spike_during_the_start_is_not_a_rebound() -> None:
    """Seed 176, 2 mL at 3 mL/min: a -12 mmHg spike 2 s into the start dragged the short
    slope down and then, leaving its window, lifted it past the rebound limit (a false
    occlusion, 1 run in 300; the live simulator met it once in CI). Spikes either way now
    hold the rebound test until they have left the slope's window."""
    scenario = load_scenario("normal-liver-saline-1ml")
    plan = scenario.injection.model_copy(update={"volume_ml": 2.0, "rate_ml_min": 3.0})
    scenario = scenario.model_copy(update={"injection": plan})
    result = run_closed_loop(scenario, _model, seed=176)
    assert result.verdict is None, result.verdict
    assert result.delivered_ml == pytest.approx(2.0)


@given(
    st.lists(st.floats(-1000, 1000, allow_nan=False), min_size=3, max_size=200),
    st.integers(3, 60),
)
def test_sliding_slope_equals_a_least_squares_fit(values: list[float], window: int) -> None:
    slope = SlidingSlope(window, 0.01)
    for value in values:
        got = slope.add(value)
    tail = np.array(values[-window:])
    expected = np.polyfit(np.arange(tail.size) * 0.01, tail, 1)[0]
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-4)
