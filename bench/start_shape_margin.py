"""How far healthy starts stay from the start-shape bound, and how far bent ones go past it.

The start-shape test (``controller/safety/start_shape.py``) calls a leak when the first
fill's breath-cancelled slope falls, for ``PERSIST_S``, below the lowest a healthy RC start
can show after two earlier points, each of the three off by up to e = ``SWINGS`` x the
slope's swing at rest (at least ``SWING_FLOOR_MMHG_S``). This bench sets how many swings
that takes. It runs population cases through the real Controller with the test watching
but silent (the supervisor builds a ``WatchingStartShape``: it samples the slopes as the
test does, records them and raises nothing), then asks, at every 0.1 s, how
large e would have to be for the three points to fit a healthy start (the margin, in units
of the swing), and keeps the least of those over the last ``PERSIST_S`` (a verdict needs
the violation held that long). Reported: over every healthy stretch (normal runs, and fault
runs before their onset) the largest margins; for the fault runs the other detectors did
not find, the first time after the onset the margin passes 0.5, 1, 1.5 and 2 swings.

Run: ``.venv/bin/python -m bench.start_shape_margin [--classes
normal,needle-out,tissue-crack] [--per-class 200] [--normal 500] [--jobs 2] [--save F]``
(``--load F`` reports again; the options of ``bench.population.population_parser``); about
2 s per fault case and 5 s per normal run on one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.closed_loop import run_case
from bench.population import NORMAL, draw, population_parser, recorded_or_loaded
from controller.safety import supervisor
from controller.safety.start_shape import PERSIST_S, SAMPLE_S, SPAN_S, SWINGS, StartShape
from controller.safety.supervisor import FAST_START_AFTER_S
from controller.safety.verdict import Verdict

LEVELS = (0.5, 1.0, 1.5, 2.0)


@dataclass
class Recording:
    """One case: the first fill's slopes as the test saw them, the onset, the verdict."""

    name: str
    times_s: list[float]
    slopes: list[float | None]
    swing_mmhg_s: float
    onset_s: float | None  # on the same clock as the times
    verdict: str | None


class WatchingStartShape(StartShape):
    """The test as the supervisor runs it, sampling the same slopes, recording them and
    deciding nothing (a verdict would end the run before the margins are known)."""

    seen: Recording | None = None

    def on_block(self, t: float, slope_mmhg_s: float | None) -> Verdict | None:
        if self.take(t, slope_mmhg_s) and WatchingStartShape.seen is not None:
            WatchingStartShape.seen.times_s.append(t)
            WatchingStartShape.seen.slopes.append(slope_mmhg_s)
            WatchingStartShape.seen.swing_mmhg_s = self.error_mmhg_s / SWINGS
        return None


def _record(spec: tuple[str, int]) -> Recording:
    klass, seed = spec
    rec = Recording(f"{klass}#{seed}", [], [], 0.0, None, None)
    WatchingStartShape.seen = rec
    supervisor.StartShape = WatchingStartShape  # type: ignore[attr-defined]  # what it builds
    result = run_case(draw(klass, seed))
    rec.onset_s, rec.verdict = result.onset_mono_s, result.verdict
    return rec


def margin_swings(earliest: float, middle: float, now: float, swing: float) -> float:
    """The least error, in swings, that lets ``now`` follow a healthy start (0: it does)."""
    if swing <= 0.0 or earliest <= 0.0 or middle <= 0.0:
        return 0.0
    fits = StartShape.lowest_healthy_mmhg_s
    bound = fits(earliest, middle, 0.0)
    if bound is None or now >= bound:
        return 0.0
    low, high = 0.0, min(earliest, middle)
    for _ in range(40):
        mid = 0.5 * (low + high)
        bound = fits(earliest, middle, mid)
        if bound is not None and now < bound:
            low = mid
        else:
            high = mid
    return high / swing


def held_margins(rec: Recording) -> list[float]:
    """At each sample, the least margin over the last ``PERSIST_S``."""
    span = round(SPAN_S / SAMPLE_S)
    hold = max(1, round(PERSIST_S / SAMPLE_S) + 1)
    raw = [0.0] * len(rec.slopes)
    for i in range(2 * span, len(rec.slopes)):
        a, b, c = rec.slopes[i - 2 * span], rec.slopes[i - span], rec.slopes[i]
        if a is not None and b is not None and c is not None:
            raw[i] = margin_swings(a, b, c, rec.swing_mmhg_s)
    return [min(raw[max(0, i - hold + 1) : i + 1]) for i in range(len(raw))]


def report(recordings: list[Recording]) -> None:
    healthy: list[tuple[float, str, float]] = []
    found_late: dict[float, list[str]] = {level: [] for level in LEVELS}
    missed = 0
    for rec in recordings:
        margins = held_margins(rec)
        onset = rec.onset_s if rec.onset_s is not None else float("inf")
        before = [(m, t) for m, t in zip(margins, rec.times_s, strict=True) if t < onset]
        if before:
            m, t = max(before)
            healthy.append((m, rec.name, t - (rec.times_s[0] - FAST_START_AFTER_S)))
        if rec.onset_s is None or rec.verdict is not None:
            continue
        missed += 1
        after = [(t - onset, m) for m, t in zip(margins, rec.times_s, strict=True) if t >= onset]
        for level in LEVELS:
            late = next((dt for dt, m in after if m > level), None)
            if late is not None:
                found_late[level].append(f"{rec.name} {late:.1f} s")
    healthy.sort(reverse=True)
    print(f"healthy stretches: {len(healthy)}; the largest held margins (swings):")
    for m, name, t in healthy[:10]:
        print(f"  {m:5.2f}  {name} at {t:.1f} s into the fill")
    print(f"fault runs no other detector found: {missed}")
    for level, names in found_late.items():
        print(f"  past {level:g} swings: {len(names)}  {', '.join(names)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = population_parser(__doc__.splitlines()[0], f"{NORMAL},needle-out,tissue-crack")
    report(recorded_or_loaded(parser.parse_args(argv), _record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
