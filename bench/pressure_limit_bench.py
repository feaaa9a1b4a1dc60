"""Pressure-limited infusion against plain stop-at-the-limit, on the simulator's tissue and
drug profiles (offline, faster than real time), in the same run.

Each case puts the ceiling well under the pressure the injection would reach at its
planned rate. Reported per mode: whether the dose was delivered, the peak true line
pressure against the ceiling (overshoot), the time spent at the planned rate, the whole
infusion time, how many rate changes and the largest change per second, and how often
the rate turned (hunting).

Run: ``make bench`` (or ``.venv/bin/python -m bench.pressure_limit_bench [--seeds N]``).
"""

from __future__ import annotations

import argparse

from simulator.limited_loop import run_limited
from simulator.scenario import load_scenario

CASES = [
    ("normal-liver-saline-1ml", 60.0),
    ("normal-liver-18g-10ml", 120.0),
    ("normal-liver-lipiodol-1ml", 100.0),
    ("normal-liver-mab150-1ml", 100.0),
    ("normal-subcut-mab50-5ml", 110.0),
    ("normal-subcut-saline-3ml", 120.0),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    print("pressure-limited infusion vs stop at the limit (true line pressure; offline)")
    print(
        f"  {'scenario':28s} {'ceiling':>7s} {'mode':8s} {'dose':>13s} {'peak':>7s} "
        f"{'over':>6s} {'at plan':>8s} {'infusing':>9s} {'changes':>7s} {'max/s':>7s} "
        f"{'turns/min':>9s}"
    )
    for name, ceiling in CASES:
        scenario = load_scenario(name)
        for seed in range(1, args.seeds + 1):
            for limited in (False, True):
                r = run_limited(scenario, ceiling, limited=limited, seed=seed)
                dose = f"{r.delivered_ml:.3f}/{scenario.injection.volume_ml:g} mL"
                print(
                    f"  {name:28s} {ceiling:7.0f} {'limited' if limited else 'stop':8s} "
                    f"{dose:>13s} {r.peak_mmhg:7.1f} {r.peak_mmhg - ceiling:+6.1f} "
                    f"{r.at_planned_s:7.0f}s {r.infusing_s:8.0f}s {len(r.changes):7d} "
                    f"{r.max_step_ml_min_per_s:7.3f} {r.reversals_per_min:9.2f}"
                    + ("" if r.completed else f"  stopped: {r.verdict}")
                )


if __name__ == "__main__":
    main()
