"""How far healthy levelled lines stay from a CUSUM's learnt limit, and how soon faults pass it.

The line model's CUSUMs on the levelled line (``controller/safety/line_model.py``) decided
most needle-outs and cracks (down, tested by ``Fall`` in ``controller/safety/leak.py``) and
most blockages at 1 mL/min found late (up, tested by ``Occlusion`` in
``controller/safety/occlusion.py``), late: their limits are set at rest, from the artifact
envelope (1 to 1.5 envelopes + 3 mmHg), and a few seconds at rest cannot show how deep the
next breath will be. Both tests now learn their limit on the levelled line itself
(``controller/safety/learnt_limit.py``: the CUSUM's largest value over a breath there, times
a margin, plus an offset, with a floor in envelopes). This bench set those values. It runs
population cases through the real Controller at the rest's limits, recording every step and
both CUSUMs on each levelled stretch, then replays the supervisor's own ``Fall`` or
``Occlusion`` (the limit, and what a handling spike does to it) at each candidate's
constants. Reported: over every healthy levelled stretch (normal runs, less each fill's last
half second where the downward tests stand aside; fault runs before their onset) the
largest CUSUM against the limit (above 1 is a false stop); for the fault runs, the latency
the supervisor would have (the first pass after the onset, held as the test holds it, or
the run's own verdict if sooner), and how many are found within the class's target.

Run: ``.venv/bin/python -m bench.cusum_margin [--direction down|up] [--classes
needle-out,tissue-crack,normal] [--per-class 200] [--normal 500] [--first-seed 1] [--jobs 2]
[--save F]``; ``--load F [G ...]`` reports again on saved recordings (merged: a run stopped
and resumed from a later seed). The grid replayed: ``--learnt-margin 1.2,1.4`` and likewise
``--learnt-offset-mmhg``, ``--listen-breaths``, ``--learnt-floor-envelopes``,
``--listen-min-s`` (for ``--direction up``, occlusion.py's ``CLIMB_`` constants). The
recording is kept every 10 cases, so a long run can be read before it ends.
About 2.5 s per fault run and 20 s per normal run on one process.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.closed_loop import run_case
from bench.detection_bench import TARGET_P95_S, percentile
from bench.population import NORMAL, draw, population_parser, recorded_or_loaded
from controller.safety import leak, learnt_limit, occlusion, supervisor
from controller.safety.breath_comb import BreathComb
from controller.safety.line_model import DOWN_DRIFT_MMHG_S, LineModel
from controller.safety.rest import cusum_step
from controller.safety.timebase import BLOCK_S

# the grid replayed (each overridable on the command line)
MARGINS = (1.2, 1.4, 1.6)
OFFSETS_MMHG = (3.0, 4.0)
LISTEN_BREATHS = (1.0,)
FLOORS_ENVELOPES = (0.5,)  # the learnt limit never under this x envelope + offset
LISTEN_MIN_S = (4.0,)  # and the listening never shorter than this
# margin, offset (mmHg), listen (breaths), floor (envelopes), listen at least (s)
Candidate = tuple[float, float, float, float, float]
NAMES = (
    "LEARNT_MARGIN",
    "LEARNT_OFFSET_MMHG",
    "LISTEN_BREATHS",
    "LEARNT_FLOOR_ENVELOPES",
    "LISTEN_MIN_S",
)


@dataclass(frozen=True)
class Direction:
    """Which CUSUM is replayed: the down one (``leak.Fall``) or the up one (``occlusion``'s
    climb), and the module whose constants (``names``, in ``NAMES``' order) set its limit."""

    name: str
    module: ModuleType
    names: tuple[str, ...]
    persist_s: float


DOWN = Direction("down", leak, NAMES, leak.FALL_PERSIST_S)
UP = Direction(
    "up",
    occlusion,
    tuple(f"CLIMB_{name}" for name in NAMES),
    occlusion.CLIMB_PERSIST_S,
)
DIRECTIONS = {d.name: d for d in (DOWN, UP)}


@dataclass
class Segment:
    """One levelled stretch of one fill: the CUSUM's limit from the rest and its steps."""

    down_limit_mmhg: float
    envelope_mmhg: float
    period_s: float
    times_s: list[float] = field(default_factory=list)
    steps_mmhg: list[float] = field(default_factory=list)
    down_mmhg: list[float] = field(default_factory=list)
    up_limit_mmhg: float = 0.0
    full_mmhg_s: float = 0.0  # Q/C, as the line model had it
    up_mmhg: list[float] = field(default_factory=list)


@dataclass
class Recording:
    name: str
    segments: list[Segment] = field(default_factory=list)
    onset_s: float | None = None
    verdict: str | None = None
    verdict_s: float | None = None


class _Seen:
    recording: Recording | None = None
    period_s = 0.0


class WatchedComb(BreathComb):
    def learn(self, rest_mmhg: Any) -> bool:
        found = super().learn(rest_mmhg)
        _Seen.period_s = self.period_s
        return found


class WatchedLine(LineModel):
    """The line model as the supervisor builds it, recording each CUSUM step."""

    def _monitor(self, t: float, filtered: float, step: float) -> None:
        super()._monitor(t, filtered, step)
        rec = _Seen.recording
        if rec is None:
            return
        if not rec.segments or rec.segments[-1].times_s[0] < self.t_start:
            seg = Segment(self.down_limit, self.envelope, _Seen.period_s)
            seg.up_limit_mmhg, seg.full_mmhg_s = self.up_limit, self.full_occlusion_slope
            rec.segments.append(seg)
        seg = rec.segments[-1]
        seg.times_s.append(t)
        seg.steps_mmhg.append(step)
        seg.down_mmhg.append(self.down)
        seg.up_mmhg.append(self.up)


UNLEARNT = 1e9  # a learnt limit's margin that leaves the rest's limit in force


def _record(spec: tuple[str, int]) -> Recording:
    klass, seed = spec
    rec = Recording(f"{klass}#{seed}")
    _Seen.recording = rec
    supervisor.LineModel = WatchedLine  # type: ignore[attr-defined]  # what it builds
    supervisor.BreathComb = WatchedComb  # type: ignore[attr-defined]
    # the run itself at the rest's limits: the replay is what adds a learnt one
    leak.LEARNT_MARGIN = occlusion.CLIMB_LEARNT_MARGIN = UNLEARNT
    result = run_case(draw(klass, seed))
    rec.onset_s, rec.verdict = result.onset_mono_s, result.verdict
    if result.latency_s is not None and rec.onset_s is not None:
        rec.verdict_s = rec.onset_s + result.latency_s
    return rec


FloatArray = npt.NDArray[np.float64]


def cusum(steps: FloatArray, drift_mmhg_s: float) -> FloatArray:
    """The down CUSUM over ``steps``, by the line model's own ``cusum_step``."""
    out = np.empty(steps.size)
    down, k = 0.0, drift_mmhg_s * BLOCK_S
    for i, step in enumerate(steps.tolist()):
        _, down = cusum_step(0.0, down, step, 0.0, k)
        out[i] = down
    return out


class _Line:
    """What ``Fall.down_limit`` and ``Occlusion.up_limit`` read of the line model, replayed."""

    def __init__(self, seg: Segment) -> None:
        self.down_limit, self.up_limit = seg.down_limit_mmhg, seg.up_limit_mmhg
        self.envelope = seg.envelope_mmhg
        self.full_occlusion_slope = seg.full_mmhg_s
        self.down = self.up = self.step_mmhg = 0.0


def replayed_limit(
    seg: Segment, cand: Candidate, direction: Direction = DOWN
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """The limit at each block and whether a spike holds the test there, by the
    supervisor's own ``Fall`` (down) or ``Occlusion`` (up; a spike there brings back the
    rest's limit, the test is not held) at the candidate's constants (set on the module
    for the replay, the product's restored after)."""
    module = direction.module
    product = {name: getattr(module, name) for name in direction.names}
    for name, value in zip(direction.names, cand, strict=True):
        setattr(module, name, value)
    try:
        return _replay(seg, direction)
    finally:
        for name, value in product.items():  # the product's values again
            setattr(module, name, value)


def _replay(seg: Segment, direction: Direction) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    line, size = _Line(seg), len(seg.times_s)
    limit, held = np.empty(size), np.zeros(size, dtype=bool)
    if direction is UP:
        climb = occlusion.Occlusion()
        climb.learn(seg.period_s)
        for i, t in enumerate(seg.times_s):
            line.up, line.step_mmhg = seg.up_mmhg[i], seg.steps_mmhg[i]
            limit[i] = climb.up_limit(t, line)  # type: ignore[arg-type]
        return limit, held
    fall = leak.Fall()
    fall.learn(seg.period_s)
    for i, t in enumerate(seg.times_s):
        line.down = seg.down_mmhg[i]
        held[i] = fall.spike_held(t, seg.steps_mmhg[i])
        limit[i] = fall.down_limit(t, line, learn=not held[i])  # type: ignore[arg-type]
    return limit, held


def first_pass(
    times: FloatArray, over: npt.NDArray[np.bool_], persist_s: float = leak.FALL_PERSIST_S
) -> int | None:
    """The first block at which ``over`` has held for ``persist_s``."""
    since = -1.0
    for i, (t, o) in enumerate(zip(times.tolist(), over.tolist(), strict=True)):
        if not o:
            since = -1.0
            continue
        if since < 0:
            since = t
        if t - since >= persist_s:
            return i
    return None


def candidates(grid: Sequence[Sequence[float]]) -> list[Candidate | None]:
    """None: the rest's limit alone (the test before the learnt limit); then every
    combination of ``grid`` (one sequence per name in ``NAMES``)."""
    combos: list[Candidate | None] = [None]
    for values in itertools.product(*grid):
        margin, offset, breaths, floor, min_s = values
        combos.append((margin, offset, breaths, floor, min_s))
    return combos


def evaluate(
    rec: Recording, cand: Candidate | None, direction: Direction = DOWN
) -> tuple[float, float | None]:
    """(largest CUSUM / limit over healthy blocks, the fault's first pass or None)."""
    onset = rec.onset_s if rec.onset_s is not None else float("inf")
    worst, found = 0.0, None
    for seg in rec.segments:
        t = np.asarray(seg.times_s)
        # the run's own CUSUM (the down one checked against a replay)
        values = np.asarray(seg.up_mmhg if direction is UP else seg.down_mmhg)
        if cand is not None:
            limit, held = replayed_limit(seg, cand, direction)
        else:
            rest = seg.up_limit_mmhg if direction is UP else seg.down_limit_mmhg
            limit, held = np.full(values.size, rest), np.zeros(values.size, bool)
        healthy = t < onset
        tested = healthy
        if rec.onset_s is None and direction is DOWN:
            # a normal fill's last half second: the pump reaching its volume (the downward
            # tests stand aside then; a fault run's stretch ends at its verdict)
            tested = healthy & (t < t[-1] - supervisor.ENDING_S)
        tested &= ~held
        if tested.any():
            worst = max(worst, float(np.max(values[tested] / limit[tested])))
        i = first_pass(t, (values > limit) & ~held & ~healthy, direction.persist_s)
        if i is not None and found is None:
            found = float(t[i])
    return worst, found


PHASES = ("rising", "listening", "after")


def onset_phase(rec: Recording, cand: Candidate | None, direction: Direction = DOWN) -> str:
    """Where a fault's onset falls: before its fill levelled (a rising start), while the
    test listens to the levelled line (the rest's limit), or after."""
    assert rec.onset_s is not None
    module, names = direction.module, direction.names
    breaths, min_s = (
        (cand[2], cand[4]) if cand else (getattr(module, names[2]), getattr(module, names[4]))
    )
    for seg in rec.segments:
        start = seg.times_s[0]
        if start <= rec.onset_s <= seg.times_s[-1]:
            listened = learnt_limit.listening_s(seg.period_s, breaths, min_s)
            return "listening" if rec.onset_s < start + listened else "after"
    return "rising"


def report(
    recordings: list[Recording], grid: Sequence[Sequence[float]], direction: Direction = DOWN
) -> None:
    check = [r for r in recordings if r.segments]
    for rec in check[:20]:
        for seg in rec.segments:
            again = cusum(np.asarray(seg.steps_mmhg), DOWN_DRIFT_MMHG_S)
            assert np.allclose(again, seg.down_mmhg), f"replay differs from the run: {rec.name}"
    print(f"{len(recordings)} runs, {sum(len(r.segments) for r in recordings)} levelled stretches")
    print(f"the {direction.name} CUSUM's limit:")
    for cand in candidates(grid):
        _report_candidate(recordings, cand, direction)


def _report_candidate(
    recordings: list[Recording], cand: Candidate | None, direction: Direction
) -> None:
    worst_all: list[tuple[float, str]] = []
    lates: dict[str, list[float]] = {}
    phases: dict[tuple[str, str], list[float]] = {}
    for rec in recordings:
        worst, found = evaluate(rec, cand, direction)
        worst_all.append((worst, rec.name))
        if rec.onset_s is None:
            continue
        own = rec.verdict_s - rec.onset_s if rec.verdict_s is not None else float("inf")
        late = min(own, found - rec.onset_s) if found is not None else own
        klass = rec.name.split("#")[0]
        lates.setdefault(klass, []).append(late)
        phases.setdefault((klass, onset_phase(rec, cand, direction)), []).append(late)
    worst_all.sort(reverse=True)
    false = sum(1 for w, _ in worst_all if w > 1.0)
    near = sum(1 for w, _ in worst_all if w > 0.9)
    top = ", ".join(f"{n} {w:.2f}" for w, n in worst_all[:3])
    name = (
        "the rest's limit"
        if cand is None
        else (
            f"margin {cand[0]:g} offset {cand[1]:g} listen {cand[2]:g} breaths "
            f"(at least {cand[4]:g} s) floor {cand[3]:g} envelopes"
        )
    )
    print(f"{name}: false {false}, over 0.9 {near}; highest {top}")
    for klass, values in sorted(lates.items()):
        target = TARGET_P95_S.get(klass, 1.0)
        hits = [x for x in values if x != float("inf")]  # as the detection bench
        within = sum(1 for x in hits if x <= target)
        print(
            f"    {klass}: {len(hits)}/{len(values)} found, within {target:g} s {within}; of "
            f"those found p50 {statistics.median(hits):.2f} s, p95 {percentile(hits, 0.95):.2f} s"
        )
        where = []
        for phase in PHASES:
            got = phases.get((klass, phase), [])
            soon = sum(1 for x in got if x <= target)
            missed = sum(1 for x in got if x == float("inf"))
            where.append(f"{phase} {len(got)}: {soon} within {target:g} s, {missed} missed")
        print("      onset " + "; ".join(where))


def main(argv: Sequence[str] | None = None) -> int:
    parser = population_parser(__doc__.splitlines()[0], f"needle-out,tissue-crack,{NORMAL}")
    parser.add_argument(
        "--direction",
        choices=sorted(DIRECTIONS),
        default=DOWN.name,
        help="the down CUSUM (leak.Fall) or the up one (occlusion's climb)",
    )
    defaults = (MARGINS, OFFSETS_MMHG, LISTEN_BREATHS, FLOORS_ENVELOPES, LISTEN_MIN_S)
    for name, values in zip(NAMES, defaults, strict=True):
        flag = "--" + name.lower().replace("_", "-")
        parser.add_argument(flag, type=_floats, default=values, help=f"{name}s to replay")
    args = parser.parse_args(argv)
    grid = [getattr(args, name.lower()) for name in NAMES]
    report(recorded_or_loaded(args, _record), grid, DIRECTIONS[args.direction])
    return 0


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


if __name__ == "__main__":
    raise SystemExit(main())
