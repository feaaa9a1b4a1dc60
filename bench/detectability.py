"""How large each population fault is at the transducer, against the breathing it hides in.

The detection bench (``bench.detection_bench``) says how fast the supervisor found each
fault; this says how much there was to find. Each case's plant runs twice offline
(``simulator.offline``: no drivers, no controller, the same seed, so the same breathing,
pulse and noise), once with its fault and once without. The difference of the two true
line pressures (artifact-free, at the transducer) is the fault's own signature: for a
leak, a needle out of the tumour or a crack, how far the line has fallen below where it
would have been; for an occlusion, how far it has climbed above. Reported at 0.25, 0.5, 1,
2 and 3 s after the onset and at the class's target, with the plant's breathing swing (peak
to peak) and sensor noise.

A fault whose signature at its class's target (``TARGET_P95_S``: 1 s for a needle out, 3 s
for an occlusion at 0.2 mL/min) is smaller than the breathing swing cannot be called
within the target by any test on the pressure level that does not predict the breathing;
one smaller than what a learnt breathing model leaves behind (``residue_mmhg``, from the
breathing's irregularity) hardly by any. Given the detection bench's ``--json``, the cases
it missed or found late are listed beside their signature.

Run: ``.venv/bin/python -m bench.detectability --classes needle-out,tissue-crack
--per-class 60 [--results results.json] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.detection_bench import TARGET_P95_S
from bench.population import draw
from simulator.offline import run_offline
from simulator.scenario import Scenario

AFTER_S = (0.25, 0.5, 1.0, 2.0, 3.0)
RISING = ("occlusion",)  # fault kinds whose signature is a rise; the others fall
TAIL_S = 0.5


@dataclass(frozen=True)
class Signature:
    klass: str
    seed: int
    onset_s: float | None
    mmhg: dict[float, float]  # s after the onset -> the fault's own move (+: its way)
    breathing_pp_mmhg: float
    irregularity: float
    noise_mmhg_rms: float

    @property
    def residue_mmhg(self) -> float:
        """About what a breathing model fitted to the last breath leaves one breath on: a
        period off by the fraction r puts the breath up to 2 pi r out of phase, a swing of
        up to pi r times the peak-to-peak."""
        return np.pi * self.irregularity * self.breathing_pp_mmhg


def _pressure(scenario: Scenario, until_s: float) -> tuple[np.ndarray, np.ndarray, Any]:
    result = run_offline(scenario, duration_s=until_s)
    arrays = result.truth.arrays()
    onsets = [o for o in result.truth.onsets if o.applied]
    return arrays["t_s"], arrays["p_line_mmhg"], onsets[0] if onsets else None


def signature(klass: str, seed: int) -> Signature:
    """The fault's own move at the transducer, from a run with it and one without."""
    scenario = draw(klass, seed).scenario
    fault = scenario.faults[0]
    assert fault.at_s is not None, "population faults are timed from the pump's start"
    until_s = scenario.injection.start_s + fault.at_s + max(_horizons(klass)) + TAIL_S
    t, with_fault, onset = _pressure(scenario, until_s)
    _, without, _ = _pressure(scenario.model_copy(update={"faults": []}), until_s)
    moves: dict[float, float] = {}
    if onset is not None:
        sign = 1.0 if onset.kind in RISING else -1.0
        n = min(t.size, without.size)
        for after in _horizons(klass):
            i = min(n - 1, int(np.searchsorted(t[:n], onset.t_s + after)))
            moves[after] = sign * float(with_fault[i] - without[i])
    a = scenario.artifacts
    return Signature(
        klass=klass,
        seed=seed,
        onset_s=onset.t_s if onset is not None else None,
        mmhg=moves,
        breathing_pp_mmhg=2.0 * a.respiration_mmhg,
        irregularity=a.respiration_irregularity,
        noise_mmhg_rms=scenario.transducer.noise_mmhg_rms,
    )


def _target_s(klass: str) -> float:
    """The class's p95 target; 1 s for a class without one (sensor and link faults)."""
    return TARGET_P95_S.get(klass, 1.0)


def _horizons(klass: str) -> list[float]:
    """The times after the onset a signature is read at: the table's and the class's target."""
    return sorted({*AFTER_S, _target_s(klass)})


def _job(job: tuple[str, int]) -> Signature:
    return signature(*job)


def _late(results: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
    """Bench cases missed, wrongly called or later than their class's target."""
    out: dict[tuple[str, int], str] = {}
    for r in results:
        target = TARGET_P95_S.get(r["class"])
        if r.get("detector", "supervisor") != "supervisor" or target is None:
            continue
        if r["verdict"] is None:
            out[(r["class"], r["seed"])] = "missed"
        elif r["latency_s"] is not None and r["latency_s"] > target:
            out[(r["class"], r["seed"])] = f"{r['latency_s']:.2f} s"
    return out


def report(signatures: list[Signature], late: dict[tuple[str, int], str]) -> None:
    classes = sorted({s.klass for s in signatures})
    print(
        f"{'class':20} {'plants':>6} "
        + " ".join(f"{'p50@' + str(a):>9}" for a in AFTER_S)
        + f" {'target':>7} {'<breath':>8} {'<residue':>9}"
    )
    for klass in classes:
        rows = [s for s in signatures if s.klass == klass and s.mmhg]
        medians = [statistics.median(s.mmhg[a] for s in rows) for a in AFTER_S]
        target = _target_s(klass)
        under = sum(1 for s in rows if s.mmhg[target] < s.breathing_pp_mmhg)
        under_residue = sum(1 for s in rows if s.mmhg[target] < s.residue_mmhg)
        print(
            f"{klass:20} {len(rows):6d} "
            + " ".join(f"{m:9.1f}" for m in medians)
            + f" {target:6g}s {under:8d} {under_residue:9d}"
        )
    if not late:
        return
    print("\nmissed or late (the detection bench) against the fault's own move, mmHg:")
    print(
        f"  {'case':22} {'result':>9} "
        + " ".join(f"{'@' + str(a) + ' s':>8}" for a in AFTER_S)
        + f" {'breath pp':>9} {'residue':>7} {'noise':>6}"
    )
    for s in signatures:
        result = late.get((s.klass, s.seed))
        if result is None or not s.mmhg:
            continue
        print(
            f"  {s.klass + ' #' + str(s.seed):22} {result:>9} "
            + " ".join(f"{s.mmhg[a]:8.1f}" for a in AFTER_S)
            + f" {s.breathing_pp_mmhg:9.1f} {s.residue_mmhg:7.1f} {s.noise_mmhg_rms:6.2f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="needle-out,tissue-crack")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--results", type=Path, help="the detection bench's --json, to cross with")
    parser.add_argument("--json", type=Path, help="every signature, for later analysis")
    args = parser.parse_args(argv)
    jobs = [
        (klass, seed)
        for klass in args.classes.split(",")
        for seed in range(args.first_seed, args.first_seed + args.per_class)
    ]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        signatures = []
        for done, found in enumerate(pool.imap(_job, jobs), 1):
            signatures.append(found)
            if done % 10 == 0:
                print(f"  {done}/{len(jobs)} plants", file=sys.stderr, flush=True)
    late = _late(json.loads(args.results.read_text())) if args.results else {}
    report(signatures, late)
    if args.json is not None:
        dump = [{**vars(s), "mmhg": {str(k): v for k, v in s.mmhg.items()}} for s in signatures]
        args.json.write_text(json.dumps(dump, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
