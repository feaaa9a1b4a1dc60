"""Per-sample checks: the absolute limit, and a transducer that lies."""

from __future__ import annotations

from controller.safety.sample_checks import OverPressure, SensorSamples
from controller.safety.verdict import VerdictKind


def test_over_pressure_needs_two_samples_in_a_row() -> None:
    detector = OverPressure(300.0)
    assert detector.on_sample(0.000, 301.0) is None
    assert detector.on_sample(0.001, 299.0) is None  # a single sample is a glitch
    assert detector.on_sample(0.002, 301.0) is None
    verdict = detector.on_sample(0.003, 302.0)
    assert verdict is not None and verdict.kind is VerdictKind.OVER_PRESSURE
    assert verdict.t_mono_s == 0.003


def test_a_pressure_that_is_not_a_number_is_a_sensor_fault_at_once() -> None:
    verdict = OverPressure(300.0).on_sample(0.0, float("nan"))
    assert verdict is not None and verdict.kind is VerdictKind.SENSOR_FAULT
    assert "not a number" in verdict.detail


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


def test_a_line_emptying_to_atmosphere_in_a_millisecond_is_not_an_impossible_reading() -> None:
    """A Luer coming apart at 200 mmHg: the leak tests call it, not the sensor check."""
    detector = SensorSamples()
    detector.on_sample(0.0, 200.0, 1)
    assert detector.on_sample(0.001, 2.0, 2) is None
    detector.on_sample(0.002, 3.0, 3)
    assert detector.on_sample(0.003, 190.0, 4) is not None  # back up: impossible
    opened_upstream = SensorSamples()  # the bench found a Luer called a sensor fault so
    opened_upstream.on_sample(0.0, 200.0, 1)
    assert opened_upstream.on_sample(0.001, 33.0, 2) is None  # what the syringe side holds
    below_air = SensorSamples()
    below_air.on_sample(0.0, 200.0, 1)
    assert below_air.on_sample(0.001, -40.0, 2) is not None  # no line falls below air
