"""How far healthy first fills stay from the breath-rise limit, and how soon blockages pass it.

The breath-rise test (``controller/safety/breath_rise.py``) calls an occlusion when y, the
first fill's rise over the last breath, stands above its mean over the breath before by
more than ``ENVELOPE_MARGIN`` x the rest's artifact envelope + ``OFFSET_MMHG`` for
``PERSIST_S``. This bench sets that margin. It runs population cases through the real
Controller with the test watching but silent (the supervisor builds a ``WatchingRise``:
it records the blocks the test is given and raises nothing), then replays them through
the test. Reported: over every healthy stretch (normal runs, and fault runs before their
onset) the largest held statistic beyond the offset, in envelopes; for the occlusion runs,
at each candidate margin, the latency the supervisor would have with the test (its first
pass after the onset, or the other detectors' verdict if sooner: the run ends there).

Run: ``.venv/bin/python -m bench.breath_rise_margin [--classes
normal,occlusion@1,occlusion@0.2] [--per-class 200] [--normal 500] [--jobs 2] [--save F]``;
``--load F`` reports again on saved recordings. About 1 s per occlusion run and 6 s per
normal run on one process.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bench.closed_loop import run_case
from bench.detection_bench import percentile
from bench.population import NORMAL, draw, population_parser, recorded_or_loaded
from controller.safety import supervisor
from controller.safety.breath_rise import (
    ENVELOPE_MARGIN,
    MIN_LIMIT_MMHG,
    OFFSET_MMHG,
    PERSIST_S,
    BreathRise,
)
from controller.safety.timebase import BLOCK_S
from controller.safety.verdict import Verdict

MARGINS = (0.6, 0.7, 0.8, ENVELOPE_MARGIN, 1.0, 1.2)


@dataclass
class Recording:
    """One case: the rest's rhythm and envelope, the first fill's blocks as the test was
    given them, the onset and the verdict (times on the controller's clock)."""

    name: str
    period_blocks: int = 0
    envelope_mmhg: float = 0.0
    times_s: list[float] = field(default_factory=list)
    blocks_mmhg: list[float] = field(default_factory=list)
    held: list[bool] = field(default_factory=list)
    onset_s: float | None = None
    verdict: str | None = None
    verdict_s: float | None = None


class WatchingRise(BreathRise):
    """The test as the supervisor builds it, recording what it is given and deciding
    nothing (a verdict would end the run before the margins are known)."""

    seen: Recording | None = None

    def learn(self, period_blocks: int, envelope_mmhg: float) -> None:
        super().learn(period_blocks, envelope_mmhg)
        rec = WatchingRise.seen
        if rec is not None and not rec.times_s:
            rec.period_blocks, rec.envelope_mmhg = period_blocks, envelope_mmhg

    def on_block(self, t: float, block_mmhg: float, held: bool) -> Verdict | None:
        rec = WatchingRise.seen
        if rec is not None and self._armed:
            rec.times_s.append(t)
            rec.blocks_mmhg.append(block_mmhg)
            rec.held.append(held)
        return None


def _record(spec: tuple[str, int]) -> Recording:
    klass, seed = spec
    rec = Recording(f"{klass}#{seed}")
    WatchingRise.seen = rec
    supervisor.BreathRise = WatchingRise  # type: ignore[attr-defined]  # what it builds
    result = run_case(draw(klass, seed))
    rec.onset_s, rec.verdict = result.onset_mono_s, result.verdict
    if result.latency_s is not None and rec.onset_s is not None:
        rec.verdict_s = rec.onset_s + result.latency_s
    return rec


def replay(rec: Recording) -> npt.NDArray[np.float64]:
    """The test fed what the run gave it; at each block, its statistic held over the last
    ``PERSIST_S`` (the least of it then; 0 where not valid)."""
    test = BreathRise()
    test.learn(rec.period_blocks, rec.envelope_mmhg)
    raw = np.array(
        [
            test.rise_mmhg if test.update(block, held) else 0.0
            for block, held in zip(rec.blocks_mmhg, rec.held, strict=True)
        ]
    )
    hold = round(PERSIST_S / BLOCK_S) + 1
    padded = np.concatenate((np.zeros(hold - 1), raw))
    held: npt.NDArray[np.float64] = np.lib.stride_tricks.sliding_window_view(padded, hold).min(1)
    return held


def report(recordings: list[Recording]) -> None:
    healthy: list[tuple[float, str, float, float]] = []
    latencies: dict[str, dict[float, list[float]]] = {}
    for rec in recordings:
        if not rec.times_s:
            continue
        held, t = replay(rec), np.asarray(rec.times_s)
        onset = rec.onset_s if rec.onset_s is not None else float("inf")
        before = t < onset
        if before.any():
            i = int(np.argmax(np.where(before, held, -np.inf)))
            beyond = (held[i] - OFFSET_MMHG) / max(rec.envelope_mmhg, 0.25)
            healthy.append((beyond, rec.name, float(held[i]), float(t[i] - t[0])))
        if rec.onset_s is None or not rec.name.startswith("occlusion"):
            continue
        found = rec.verdict_s - onset if rec.verdict_s is not None else float("inf")
        by_margin = latencies.setdefault(rec.name.split("#")[0], {m: [] for m in MARGINS})
        for m, lates in by_margin.items():
            limit = max(MIN_LIMIT_MMHG, m * rec.envelope_mmhg + OFFSET_MMHG)
            passed = np.flatnonzero(~before & (held > limit))
            lates.append(min(found, float(t[passed[0]] - onset)) if passed.size else found)
    healthy.sort(reverse=True)
    print(f"healthy stretches: {len(healthy)}; the largest held statistic beyond the offset:")
    for beyond, name, h, at in healthy[:12]:
        print(f"  {beyond:5.2f} envelopes  {name}: {h:.1f} mmHg at {at:.1f} s into the fill")
    for klass, by_margin in latencies.items():
        print(f"{klass}: latency with the test at each margin (envelopes)")
        for m, lates in by_margin.items():
            p95 = percentile(lates, 0.95)
            within = sum(1 for x in lates if x <= 1.0)
            print(
                f"  {m:4.2f}: {len(lates)} runs, median {statistics.median(lates):.2f} s, "
                f"p95 {p95:.2f} s, within 1 s {within}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = population_parser(__doc__.splitlines()[0], f"{NORMAL},occlusion@1,occlusion@0.2")
    report(recorded_or_loaded(parser.parse_args(argv), _record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
