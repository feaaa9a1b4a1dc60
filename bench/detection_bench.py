"""Detection over a population of plants, through the real Controller, against a baseline.

Every case (``bench.population``) runs closed loop on the virtual clock
(``bench.closed_loop``): the controller built by the composition root, the real drivers,
the emulators and the plant. The same cases run a second time with the fixed-threshold
detector (``bench.baseline``) in place of the supervisor's line detectors. Reported per
fault class: detection latency from the true onset (p50, p95, max), misses (no verdict),
wrong kinds and false alarms (a verdict before the fault's onset: the line was still
healthy); over the normal runs, false alarms; for occlusions, the bolus the line still
stores when the case ends (after relief); for every case, the recorded delivered volume
against the true net plunger travel.

Run: ``make bench`` (or ``.venv/bin/python -m bench.detection_bench [--per-class N]
[--normal N] [--classes a,b] [--detectors supervisor,threshold] [--jobs J] [--json FILE]``).
The population is deterministic by seed, so one detector's run and the other's, on the same
classes and seeds, meet the same plants. Targets are in issue 17 and ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench.baseline import ThresholdSupervisor
from bench.closed_loop import Case, CaseResult, run_case
from bench.population import FAULT_CLASSES, NORMAL, cases

TARGET_P95_S = {
    "occlusion@0.2": 3.0,
    "occlusion@1": 1.0,
    "occlusion@5": 0.3,
    "luer-disconnection": 0.25,
    "needle-out": 1.0,
    "tissue-crack": 1.0,
}
BOLUS_TARGET_UL = 20.0
VOLUME_TARGET_UL = 5.0


DETECTORS = ("supervisor", "threshold")  # ours; the fixed-threshold baseline
Job = tuple[str, str, Case]


def build_jobs(
    classes: Sequence[str],
    detectors: Sequence[str],
    per_class: int,
    normal: int,
    first_seed: int = 1,
) -> list[Job]:
    """Every case of every class, once per detector, in the order they were drawn: the
    threshold's case is the supervisor's with the baseline in place of its detectors."""
    unknown = sorted(set(detectors) - set(DETECTORS))
    if unknown:
        raise ValueError(f"unknown detector {unknown[0]!r}: choose from {', '.join(DETECTORS)}")
    jobs: list[Job] = []
    for klass in classes:
        count = normal if klass == NORMAL else per_class
        for case in cases(klass, count, first_seed):
            if "supervisor" in detectors:
                jobs.append(("supervisor", klass, case))
            if "threshold" in detectors:
                jobs.append(("threshold", klass, replace(case, supervisor=ThresholdSupervisor)))
    return jobs


def _run(job: Job) -> tuple[str, str, CaseResult]:
    detector, klass, case = job
    return detector, klass, run_case(case)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarise(klass: str, results: list[CaseResult]) -> dict[str, Any]:
    errors = [abs(r.volume_error_ul) for r in results if r.error is None]
    row: dict[str, Any] = {
        "class": klass,
        "runs": len(results),
        "errors": sum(1 for r in results if r.error is not None),
        "volume_error_p95_ul": percentile(errors, 0.95) if errors else None,
        "volume_error_max_ul": max(errors) if errors else None,
    }
    if klass == NORMAL:
        row["false_alarms"] = sum(1 for r in results if r.verdict is not None)
        return row
    # a verdict before the fault's onset (none applied yet, or a negative latency) stopped a
    # line that was still healthy: a false alarm, never a detection (these were counted as
    # found, at the latency the verdict had, until session 27)
    early = [r for r in results if r.verdict is not None and not _after_onset(r)]
    found = [r.latency_s for r in results if r.latency_s is not None and _after_onset(r)]
    row.update(
        false_alarms=len(early),
        missed=sum(1 for r in results if r.verdict is None),
        wrong_kind=sum(1 for r in results if _after_onset(r) and r.verdict != r.expect),
        p50_s=statistics.median(found) if found else None,
        p95_s=percentile(found, 0.95) if found else None,
        max_s=max(found) if found else None,
    )
    if klass.startswith("occlusion"):
        boluses = [r.bolus_ul for r in results if r.verdict is not None]
        row["bolus_p95_ul"] = percentile(boluses, 0.95) if boluses else None
        row["bolus_max_ul"] = max(boluses) if boluses else None
    return row


# the onset and the verdict are both clock readings summed from steps: a verdict on the
# fault's own first sample can come out a few ulps early (sensor-fault #91: -1.1e-13 s)
ONSET_TOLERANCE_S = 1e-9


def _after_onset(result: CaseResult) -> bool:
    return result.latency_s is not None and result.latency_s >= -ONSET_TOLERANCE_S


def _fmt(value: Any, scale: float = 1.0, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value * scale:.0f}{unit}" if scale != 1.0 else f"{value:.1f}{unit}"
    return str(value)


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(title)
    print(
        f"  {'class':20s} {'runs':>5s} {'p50 ms':>7s} {'p95 ms':>7s} {'max ms':>7s} "
        f"{'missed':>6s} {'wrong':>5s} {'false':>5s} {'bolus95':>7s} {'vol95 uL':>8s} "
        f"{'err':>4s}"
    )
    for r in rows:
        print(
            f"  {r['class']:20s} {r['runs']:5d} {_fmt(r.get('p50_s'), 1e3):>7s} "
            f"{_fmt(r.get('p95_s'), 1e3):>7s} {_fmt(r.get('max_s'), 1e3):>7s} "
            f"{_fmt(r.get('missed')):>6s} {_fmt(r.get('wrong_kind')):>5s} "
            f"{_fmt(r.get('false_alarms')):>5s} {_fmt(r.get('bolus_p95_ul')):>7s} "
            f"{_fmt(r.get('volume_error_p95_ul')):>8s} {r['errors']:4d}"
        )


def _progress(done: int, total: int, elapsed_s: float) -> None:
    """A line on stderr every 2 % (the full population runs for the best part of an hour)."""
    step = max(1, total // 50)
    if done % step and done != total:
        return
    left_s = elapsed_s / done * (total - done)
    print(f"  {done}/{total} cases, {elapsed_s:.0f} s, about {left_s:.0f} s left", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--normal", type=int, default=500)
    parser.add_argument("--classes", default=",".join((NORMAL, *FAULT_CLASSES)))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--detectors",
        default=",".join(DETECTORS),
        help="which detectors run every case: supervisor, threshold (the baseline) or both",
    )
    parser.add_argument("--no-baseline", action="store_true", help="--detectors supervisor")
    parser.add_argument(
        "--first-seed", type=int, default=1, help="extend an earlier run with new plants"
    )
    parser.add_argument("--json", type=Path, help="every case's result, for later analysis")
    args = parser.parse_args(argv)
    classes = [c for c in args.classes.split(",") if c]
    detectors = ["supervisor"] if args.no_baseline else args.detectors.split(",")
    try:
        jobs = build_jobs(classes, detectors, args.per_class, args.normal, args.first_seed)
    except ValueError as exc:
        parser.error(str(exc))
    started = time.perf_counter()
    done: list[tuple[str, str, CaseResult]] = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for outcome in pool.imap_unordered(_run, jobs, chunksize=1):
            done.append(outcome)
            _progress(len(done), len(jobs), time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    by: dict[tuple[str, str], list[CaseResult]] = {}
    for detector, klass, result in done:
        by.setdefault((detector, klass), []).append(result)
    print(f"{len(jobs)} cases in {elapsed:.0f} s on {args.jobs} processes")
    for detector in DETECTORS:
        rows = [summarise(k, by[(detector, k)]) for k in classes if (detector, k) in by]
        if rows:
            print_table(f"{detector}:", rows)
    if args.json is not None:
        dump = [
            {"detector": d, "class": k, **asdict(r), "onset": asdict(r.onset) if r.onset else None}
            for d, k, r in done
        ]
        args.json.write_text(json.dumps(dump, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
