"""How well the population's breathing can be predicted a second ahead, and by what.

Sessions 32-37 found that every test left short of issue 17's targets is held back by the
breathing it must not mistake for a fault, and named a better breath predictor as the lever
(``docs/performance.md``). This measures the lever's size on the breathing alone: the
population's artifacts (``bench.population``: breathing 0-10 mmHg peak to peak at 10-20 per
minute, each breath's period and depth drawn within +-0-20 %; pulse 0.3-2 mmHg at 50-120 per
minute, 0-5 % irregular; sensor noise), no line, no spikes. The quantity is what the combs,
the breath rise and the CUSUMs compare: the 0.4 s mean of the pressure, and its change over
the next second. For each predictor of that change, each run's 99th percentile error
(evaluated from 40 s on, every 50 ms) is reported over the runs whose breathing is at least
4 mmHg peak to peak, in mmHg and as a fraction of the run's breathing swing.

Predictors:
- ``hold``: no change (a test on the level alone);
- ``last breath``: the same second one mean breath ago (what the combs and the breath rise do);
- ``three breaths``: the mean of the same second one, two and three breaths ago;
- ``sine over N breaths``: a level and a sinusoid (frequency searched within +-25 % of the
  mean) fitted by least squares over the last N mean breaths, run on;
- ``sine and slope, 1.5 breaths``: the same with a straight line under the sinusoid, as a
  first fill still rising would need;
- ``current breath known``: the simulator's truth of the breath under way (its start, length
  and depth), later breaths at the mean, the pulse by its last beat. No causal predictor can
  know this; it bounds what prediction can gain against the breathing's own irregularity.

Run: ``.venv/bin/python -m bench.breath_predictability --runs 200 --jobs 2``.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.population import NORMAL, draw
from simulator.plant.artifacts import Artifacts

Array = npt.NDArray[np.float64]
FS_HZ = 100.0
MEAN_S = 0.4
AHEAD_S = 1.0
FROM_S = 40.0
RUN_S = 150.0
EVERY = 5  # evaluate every 50 ms
MIN_SWING_MMHG = 4.0
SINE_SPAN = 0.25  # the sinusoid's frequency searched within +-25 % of the mean breath


@dataclass(frozen=True)
class Signal:
    """One run's disturbance at FS_HZ, split into what the truth knows."""

    t_s: Array
    total_mmhg: Array  # breathing + pulse + noise: what a predictor sees
    pulse_mmhg: Array  # pulse + noise alone
    # per sample: the breath under way (start s, period s, depth mmHg)
    cycles: list[tuple[float, float, float]]
    breath_period_s: float
    pulse_period_s: float
    breath_mmhg: float  # mean depth (amplitude)
    swing_mmhg: float  # peak to peak


def signal_of(seed: int) -> Signal:
    case = draw(NORMAL, seed)
    artifacts = case.scenario.artifacts.model_copy(update={"spikes_per_min": 0.0})
    noise_rms = case.scenario.transducer.noise_mmhg_rms / math.sqrt(10.0)  # 1 kHz, averaged
    made = Artifacts(artifacts, seed)
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, RUN_S, 1.0 / FS_HZ)
    total = np.empty_like(t)
    breath = np.empty_like(t)
    cycles = []
    for i, t_s in enumerate(t):
        total[i] = made.at(float(t_s))
        start, period, depth = made.breaths.cycle_at(float(t_s))
        cycles.append((start, period, depth))
        breath[i] = depth * math.sin(2 * math.pi * (t_s - start) / period)
    total += rng.normal(0.0, noise_rms, t.size)
    return Signal(
        t_s=t,
        total_mmhg=total,
        pulse_mmhg=total - breath,
        cycles=cycles,
        breath_period_s=1.0 / artifacts.respiration_hz,
        pulse_period_s=1.0 / artifacts.cardiac_hz,
        breath_mmhg=artifacts.respiration_mmhg,
        swing_mmhg=2.0 * artifacts.respiration_mmhg,
    )


def running_mean(x: Array, n: int) -> Array:
    """Mean of the last n samples at each sample (nan before the first n)."""
    c = np.cumsum(np.insert(x, 0, 0.0))
    out = np.full(x.shape, np.nan)
    out[n - 1 :] = (c[n:] - c[:-n]) / n
    return out


Indices = npt.NDArray[np.intp]
# (signal, its 0.4 s mean, where to predict) -> the predicted change of the mean 1 s on
Predictor = Callable[[Signal, Array, Indices], Array]


def hold(sig: Signal, m: Array, idx: Indices) -> Array:
    return np.zeros(idx.size)


def breaths_ago(count: int) -> Predictor:
    def predict(sig: Signal, m: Array, idx: Indices) -> Array:
        k, p = int(AHEAD_S * FS_HZ), round(sig.breath_period_s * FS_HZ)
        ago = [m[idx + k - j * p] - m[idx - j * p] for j in range(1, count + 1)]
        return np.asarray(np.mean(ago, axis=0))

    return predict


def sine_over(breaths: float, sloped: bool = False) -> Predictor:
    """``sloped``: a straight line under the sinusoid, as a first fill still rising needs."""

    def predict(sig: Signal, m: Array, idx: Indices) -> Array:
        k = int(AHEAD_S * FS_HZ)
        w = int(breaths * sig.breath_period_s * FS_HZ)
        mean_w = 2 * math.pi / sig.breath_period_s
        omegas = mean_w * np.linspace(1 - SINE_SPAN, 1 + SINE_SPAN, 21)
        out = np.empty(idx.size)
        for j, i in enumerate(idx):
            tw = sig.t_s[i - w + 1 : i + 1] - sig.t_s[i]
            out[j] = _fitted_change(tw, m[i - w + 1 : i + 1], omegas, k, sloped)
        return out

    return predict


def _fitted_change(tw: Array, y: Array, omegas: Array, k: int, sloped: bool) -> float:
    """The change over the next k samples of a level (and slope) and a sinusoid fitted to
    the mean."""
    best: tuple[float, float, Array] | None = None
    for om in omegas:
        columns = [np.ones_like(tw), np.sin(om * tw), np.cos(om * tw)]
        x = np.stack([*columns, tw] if sloped else columns, 1)
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        residual = float(np.sum((x @ coef - y) ** 2))
        if best is None or residual < best[0]:
            best = (residual, float(om), coef)
    assert best is not None
    _, om, coef = best
    ahead_s = k / FS_HZ
    trend = float(coef[3]) * ahead_s if sloped else 0.0
    return (
        float(coef[1] * math.sin(om * ahead_s) + coef[2] * (math.cos(om * ahead_s) - 1.0)) + trend
    )


def current_breath_known(sig: Signal, m: Array, idx: Indices) -> Array:
    n, k = int(MEAN_S * FS_HZ), int(AHEAD_S * FS_HZ)
    pulse = running_mean(sig.pulse_mmhg, n)
    pc = round(sig.pulse_period_s * FS_HZ)
    out = np.empty(idx.size)
    for j, i in enumerate(idx):
        start, period, depth = sig.cycles[i]
        ahead = sig.t_s[i + k - n + 1 : i + k + 1]
        later = (ahead - start - period) / sig.breath_period_s
        wave = np.where(
            ahead < start + period,
            depth * np.sin(2 * math.pi * (ahead - start) / period),
            sig.breath_mmhg * np.sin(2 * math.pi * np.mod(later, 1.0)),
        )
        pulse_change = pulse[i + k - pc] - pulse[i - pc]
        out[j] = float(np.mean(wave)) + pulse[i] + pulse_change - m[i]
    return out


PREDICTORS: dict[str, Predictor] = {
    "hold": hold,
    "last breath": breaths_ago(1),
    "three breaths": breaths_ago(3),
    "sine over 1 breath": sine_over(1.0),
    "sine over 1.5 breaths": sine_over(1.5),
    "sine and slope, 1.5 breaths": sine_over(1.5, sloped=True),
    "current breath known": current_breath_known,
}


def errors_of(seed: int) -> tuple[int, float, dict[str, float]]:
    """(seed, breathing swing, predictor -> the run's 99th percentile error, mmHg)."""
    sig = signal_of(seed)
    n, k = int(MEAN_S * FS_HZ), int(AHEAD_S * FS_HZ)
    m = running_mean(sig.total_mmhg, n)
    idx: Indices = np.arange(int(FROM_S * FS_HZ), sig.t_s.size - k - 1, EVERY, dtype=np.intp)
    change: Array = m[idx + k] - m[idx]
    return (
        seed,
        sig.swing_mmhg,
        {
            name: float(np.percentile(np.abs(change - predict(sig, m, idx)), 99))
            for name, predict in PREDICTORS.items()
        },
    )


def report(results: Sequence[tuple[int, float, dict[str, float]]]) -> str:
    breathing = [r for r in results if r[1] >= MIN_SWING_MMHG]
    lines = [
        f"{len(results)} runs, {len(breathing)} breathing at least {MIN_SWING_MMHG:g} mmHg "
        "peak to peak; each run's 99th percentile error of the 0.4 s mean 1 s ahead",
        f"{'predictor':28s} {'median mmHg':>12s} {'worst mmHg':>11s} {'median /swing':>14s} "
        f"{'worst /swing':>13s}",
    ]
    for name in PREDICTORS:
        mmhg = np.array([r[2][name] for r in breathing])
        share = mmhg / np.array([r[1] for r in breathing])
        lines.append(
            f"{name:28s} {np.median(mmhg):12.2f} {mmhg.max():11.2f} {np.median(share):14.2f} "
            f"{share.max():13.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.runs)
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(errors_of, seeds)
    print(report(results))


if __name__ == "__main__":
    main()
