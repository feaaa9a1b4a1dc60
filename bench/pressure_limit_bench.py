"""Pressure-limited infusion against plain stop-at-the-limit, through the real Controller.

Each case puts the ceiling well under the pressure the injection would reach at its
planned rate, and runs twice on the virtual clock (``bench.closed_loop``): once with the
ceiling as ``pressure_ceiling_mmhg`` (the controller slows the pump to hold the line under
it) and once as the pressure limit (it stops there). Reported per mode: the outcome, the
dose delivered, the peak true line pressure against the ceiling (overshoot) and how many
rate changes went to the pump.

Run: ``make bench`` (or ``.venv/bin/python -m bench.pressure_limit_bench [--seeds N]``).
"""

from __future__ import annotations

import argparse

from bench.closed_loop import Case, run_case
from simulator.plant.spread import PINNED
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
    print("pressure-limited infusion vs stop at the limit (true line pressure; real Controller)")
    print(
        f"  {'scenario':28s} {'ceiling':>7s} {'mode':8s} {'outcome':>10s} {'dose':>15s} "
        f"{'peak':>7s} {'over':>6s} {'changes':>7s}"
    )
    for name, ceiling in CASES:
        for seed in range(1, args.seeds + 1):
            scenario = load_scenario(name).model_copy(update={"seed": seed, "truth": PINNED})
            for limited in (False, True):
                field = "pressure_ceiling_mmhg" if limited else "pressure_limit_mmhg"
                r = run_case(Case(scenario, request={field: ceiling}))
                dose = f"{r.recorded_ml:.3f}/{scenario.injection.volume_ml:g} mL"
                print(
                    f"  {name:28s} {ceiling:7.0f} {'limited' if limited else 'stop':8s} "
                    f"{r.verdict or r.state:>10s} {dose:>15s} {r.peak_mmhg:7.1f} "
                    f"{r.peak_mmhg - ceiling:+6.1f} {r.rate_changes:7d}"
                )


if __name__ == "__main__":
    main()
