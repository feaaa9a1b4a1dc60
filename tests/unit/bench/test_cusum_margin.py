"""The CUSUMs' margin bench: its replay is the supervisor's own ``Fall`` (down) or
``Occlusion`` (up) at each candidate, and its command line reads saved recordings back, merged."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np

from bench.cusum_margin import NAMES, UP, Recording, Segment, candidates, cusum, evaluate
from bench.population import population_parser, recorded_or_loaded
from controller.safety import leak, occlusion
from controller.safety.line_model import DOWN_DRIFT_MMHG_S
from controller.safety.rest import cusum_step
from controller.safety.timebase import BLOCK_S

REST_LIMIT_MMHG = 12.0
PRODUCT = (1.4, 4.0, 1.0, 0.5, 4.0)  # the values leak.py carries
CLIMB_PRODUCT = (1.4, 4.0, 1.0, 0.5, 4.0)  # and occlusion.py, for the up CUSUM


def levelled(onset_s: float | None, seconds: float = 20.0) -> Recording:
    """A levelled line under a 4 s breath of 2 mmHg amplitude; from ``onset_s`` it falls
    at 12 mmHg/s for a second and stays there (a needle out): its CUSUM stays under the
    rest's limit, which breathing held there (``REST_LIMIT_MMHG``) and passes the learnt."""

    def line(t: float) -> float:
        fall = 0.0 if onset_s is None or t < onset_s else 12.0 * min(t - onset_s, 1.0)
        return 100.0 + 2.0 * math.sin(2 * math.pi * t / 4.0) - fall

    times = [k * BLOCK_S for k in range(round(seconds / BLOCK_S))]
    pressure = [line(t) for t in times]
    steps = [0.0, *np.diff(pressure).tolist()]
    seg = Segment(REST_LIMIT_MMHG, envelope_mmhg=4.0, period_s=4.0)
    seg.times_s, seg.steps_mmhg = times, steps
    seg.down_mmhg = cusum(np.asarray(steps), DOWN_DRIFT_MMHG_S).tolist()
    return Recording("synthetic", [seg], onset_s=onset_s)


def climbing(onset_s: float | None, seconds: float = 20.0) -> Recording:
    """The same line, blocked at ``onset_s``: it climbs at Q/C (10 mmHg/s); its up CUSUM
    (drift 3 mmHg/s) passes the learnt limit within a second, the rest's later."""

    def line(t: float) -> float:
        climb = 0.0 if onset_s is None or t < onset_s else 10.0 * (t - onset_s)
        return 100.0 + 2.0 * math.sin(2 * math.pi * t / 4.0) + climb

    times = [k * BLOCK_S for k in range(round(seconds / BLOCK_S))]
    steps = [0.0, *np.diff([line(t) for t in times]).tolist()]
    seg = Segment(REST_LIMIT_MMHG, envelope_mmhg=4.0, period_s=4.0)
    seg.up_limit_mmhg, seg.full_mmhg_s = REST_LIMIT_MMHG, 10.0
    seg.times_s, seg.steps_mmhg = times, steps
    up = 0.0
    for step in steps:
        up, _ = cusum_step(up, 0.0, step, 3.0 * BLOCK_S, 0.0)
        seg.up_mmhg.append(up)
    return Recording("synthetic", [seg], onset_s=onset_s)


def test_the_product_values_are_what_the_bench_replays_by_default() -> None:
    assert tuple(getattr(leak, name) for name in NAMES) == PRODUCT
    assert tuple(getattr(occlusion, name) for name in UP.names) == CLIMB_PRODUCT
    grid = [(1.2, 1.4), (4.0,), (0.5, 1.0), (0.5,), (2.0, 4.0)]
    assert len(candidates(grid)) == 1 + 8  # the rest's limit first, then every combination


def test_a_fall_on_a_line_listened_to_passes_the_learnt_limit_first() -> None:
    healthy, _ = evaluate(levelled(None), PRODUCT)
    assert healthy < 1.0  # its breathing never passes the limit it learnt
    _, learnt_s = evaluate(levelled(12.0), PRODUCT)
    _, rest_s = evaluate(levelled(12.0), None)
    assert learnt_s is not None and 12.0 < learnt_s < 13.0
    assert rest_s is None  # under the rest's limit throughout
    assert PRODUCT[4] == leak.LISTEN_MIN_S  # the replay put the product's back


def test_a_climb_on_a_line_listened_to_passes_the_learnt_up_limit_first() -> None:
    healthy, _ = evaluate(climbing(None), CLIMB_PRODUCT, UP)
    assert healthy < 1.0
    _, learnt_s = evaluate(climbing(12.0), CLIMB_PRODUCT, UP)
    _, rest_s = evaluate(climbing(12.0), None, UP)
    assert learnt_s is not None and 12.0 < learnt_s < 13.0
    assert rest_s is not None and rest_s > learnt_s + 0.5
    assert CLIMB_PRODUCT[0] == occlusion.CLIMB_LEARNT_MARGIN  # the product's put back


def test_the_listening_sets_when_the_learnt_limit_applies() -> None:
    """An onset 3 s in: a breath (4 s) listened to, the fall is heard with the breathing and
    the rest's limit stays; half a breath (2 s), the learnt limit is passed."""
    half_a_breath = (PRODUCT[0], PRODUCT[1], 0.5, PRODUCT[3], 2.0)
    _, whole = evaluate(levelled(3.0), PRODUCT)
    _, half = evaluate(levelled(3.0), half_a_breath)
    assert whole is None
    assert half is not None and 3.0 < half < 4.0


def test_saved_recordings_are_read_back_merged(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pkl", tmp_path / "b.pkl"
    first.write_bytes(pickle.dumps([Recording("normal#1")]))
    second.write_bytes(pickle.dumps([Recording("normal#2"), Recording("normal#3")]))
    parser = population_parser("test", "normal")
    args = parser.parse_args(["--load", str(first), str(second)])

    def never(spec: tuple[str, int]) -> Recording:
        raise AssertionError("nothing is run when recordings are loaded")

    names = [rec.name for rec in recorded_or_loaded(args, never)]
    assert names == ["normal#1", "normal#2", "normal#3"]
