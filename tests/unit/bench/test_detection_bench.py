"""The detection bench's summary: what counts as found, missed, wrong and false."""

from __future__ import annotations

import pytest

from bench.baseline import ThresholdSupervisor
from bench.closed_loop import CaseResult
from bench.detection_bench import build_jobs, main, summarise


def result(verdict: str | None, latency_s: float | None, seed: int) -> CaseResult:
    return CaseResult(
        scenario=f"occlusion@1#{seed}",
        seed=seed,
        expect="occlusion",
        state="alarm" if verdict else "completed",
        verdict=verdict,
        detail=None,
        latency_s=latency_s,
        onset=None,
        recorded_ml=1.0,
        plunger_ml=1.0,
        bolus_ul=0.0,
        start_refusals=[],
        truth={},
    )


def test_a_verdict_before_the_faults_onset_is_a_false_alarm_not_a_detection() -> None:
    """Population occlusion@0.2 runs stopped on a healthy line before their blockage were
    counted as found (no latency, or a negative one) until session 27."""
    results = [
        result("occlusion", 1.0, 1),
        result("occlusion", 3.0, 2),
        result("leak", 2.0, 3),  # found, the wrong kind
        result(None, None, 4),  # missed
        result("occlusion", None, 5),  # stopped before the blockage was applied
        result("occlusion", -1.3, 6),  # stopped 1.3 s before it
    ]
    row = summarise("occlusion@1", results)
    assert (row["false_alarms"], row["missed"], row["wrong_kind"]) == (2, 1, 1)
    assert row["max_s"] == 3.0 and row["p50_s"] == pytest.approx(2.0)


def test_a_verdict_on_the_faults_own_first_sample_is_a_detection() -> None:
    """Sensor-fault #91 (session 28): the interlock tripped on the saturated sample itself,
    and the latency summed from clock steps came out -1.1e-13 s: a detection at 0 ms, which
    the summary had counted as a false alarm."""
    results = [result("occlusion", -1.1368683772161603e-13, 1), result("occlusion", -0.001, 2)]
    row = summarise("occlusion@1", results)
    assert (row["false_alarms"], row["missed"]) == (1, 0)
    assert row["p50_s"] == pytest.approx(0.0, abs=1e-12)


def test_the_baseline_alone_meets_the_plants_the_supervisor_met() -> None:
    """``--detectors threshold`` runs only the baseline, on the very plants (same seeds, same
    draws) a supervisor-only run of the same classes met: the two runs compare plant for
    plant."""
    ours = build_jobs(["occlusion@1", "normal"], ["supervisor"], per_class=3, normal=2)
    theirs = build_jobs(["occlusion@1", "normal"], ["threshold"], per_class=3, normal=2)
    assert [d for d, _, _ in ours] == ["supervisor"] * 5
    assert [d for d, _, _ in theirs] == ["threshold"] * 5
    assert all(c.supervisor is None for _, _, c in ours)
    assert all(c.supervisor is ThresholdSupervisor for _, _, c in theirs)
    assert [(k, c.scenario) for _, k, c in ours] == [(k, c.scenario) for _, k, c in theirs]
    both = build_jobs(["occlusion@1"], ["supervisor", "threshold"], per_class=2, normal=0)
    assert [d for d, _, _ in both] == ["supervisor", "threshold"] * 2


def test_an_unknown_detector_is_refused_with_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--classes", "normal", "--normal", "1", "--detectors", "thresold"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown detector 'thresold'" in err and "supervisor, threshold" in err
