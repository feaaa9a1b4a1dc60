"""Safety supervisor benchmark on the simulator's scenario library (offline, closed loop).

For each hazard the model-based supervisor and a plain fixed-threshold detector run on
the same scenarios and seeds: detection latency from the true fault onset, false alarms
over the normal injections, the bolus left stored when an occlusion clears, and the
delivered volume. The software path from an anomalous sample to STP bytes leaving is
measured in real time on ptys by ``bench.stop_path_bench``.

Run: ``make bench`` (or ``.venv/bin/python -m bench.supervisor_bench [--seeds N]``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Sequence

from controller.safety.supervisor import Supervisor, SupervisorConfig
from controller.safety.verdict import Verdict, VerdictKind
from simulator.closed_loop import LoopResult, SupervisorLike, run_closed_loop
from simulator.scenario import Scenario, load_scenario, scenario_library

THRESHOLD_OCCLUSION_MMHG = 300.0  # a fixed occlusion threshold, as infusion pumps use
THRESHOLD_LEAK_MMHG = 5.0
IRREGULARITY = 0.15  # +-15 % breath to breath, period and depth
HEART_IRREGULARITY = 0.05  # +-5 % beat to beat: resting heart rate variability


class ThresholdSupervisor(Supervisor):
    """The baseline: fixed thresholds on the 250 ms median, same persistence, no line model."""

    def _on_block(self, t: float) -> None:
        p = self.conditioner.filtered
        if self.infusing and t - self.line.t_start > 1.0:
            if p > THRESHOLD_OCCLUSION_MMHG:
                self.trip(
                    Verdict(VerdictKind.OCCLUSION, f"pressure over {THRESHOLD_OCCLUSION_MMHG}", t)
                )
            elif p < THRESHOLD_LEAK_MMHG:
                self.trip(Verdict(VerdictKind.LEAK, f"pressure under {THRESHOLD_LEAK_MMHG}", t))


class OverPressureOnly(Supervisor):
    """Only the absolute limit, to time it on its own (200 mmHg, so occlusions reach it)."""

    def _on_block(self, t: float) -> None:
        return


def model_based(stop: Callable[[Verdict], None]) -> SupervisorLike:
    return Supervisor(SupervisorConfig(), stop)


def threshold(stop: Callable[[Verdict], None]) -> SupervisorLike:
    return ThresholdSupervisor(SupervisorConfig(), stop)


def with_rate(name: str, rate_ml_min: float) -> Scenario:
    scenario = load_scenario(name)
    plan = scenario.injection.model_copy(update={"rate_ml_min": rate_ml_min})
    return scenario.model_copy(update={"injection": plan, "name": f"{name}@{rate_ml_min:g}"})


def irregular(scenario: Scenario, spread: float = IRREGULARITY) -> Scenario:
    """The same scenario with breaths of varying length and depth (breath to breath) and,
    when ``spread`` is not 0, a heart rate varying beat to beat."""
    heart = HEART_IRREGULARITY if spread else 0.0
    artifacts = scenario.artifacts.model_copy(
        update={"respiration_irregularity": spread, "cardiac_irregularity": heart}
    )
    return scenario.model_copy(update={"artifacts": artifacts})


Maker = Callable[[Callable[[Verdict], None]], SupervisorLike]
Job = tuple[Scenario, Maker, int]


def _run(job: Job) -> LoopResult:
    scenario, make, seed = job
    return run_closed_loop(scenario, make, seed=seed)


def run_all(jobs: Sequence[Job]) -> list[LoopResult]:
    """Closed-loop runs on every core (each run is independent and deterministic)."""
    with multiprocessing.Pool(os.cpu_count()) as pool:
        return pool.map(_run, jobs, chunksize=1)


def _fmt(latencies: Sequence[float | None], expected: int) -> str:
    found = [x for x in latencies if x is not None]
    missed = expected - len(found)
    if not found:
        return f"detected 0/{expected}"
    found.sort()
    p99 = found[min(len(found) - 1, int(0.99 * len(found)))]
    return (
        f"median {statistics.median(found) * 1e3:7.0f} ms  max {p99 * 1e3:7.0f} ms  "
        f"detected {len(found)}/{expected}" + (f" ({missed} missed)" if missed else "")
    )


def latency_table(seeds: list[int]) -> None:
    cases = [
        (
            "occlusion, 5 mL syringe, 22G, 1 mL/min (target 1.0 s)",
            with_rate("fault-occlusion-sudden", 1.0),
            "occlusion",
        ),
        (
            "occlusion at 5 mL/min (target 0.3 s)",
            with_rate("fault-occlusion-sudden", 5.0),
            "occlusion",
        ),
        (
            "occlusion at 0.2 mL/min (target 3 s)",
            with_rate("fault-occlusion-sudden", 0.2),
            "occlusion",
        ),
        (
            "occlusion at 0.2 mL/min, irregular breathing and pulse",
            irregular(with_rate("fault-occlusion-sudden", 0.2)),
            "occlusion",
        ),
        ("occlusion ramping over 10 s", load_scenario("fault-occlusion-ramp"), "occlusion"),
        ("partial occlusion (80 %)", load_scenario("fault-partial-occlusion"), "occlusion"),
        ("Luer disconnection (target 0.25 s)", load_scenario("fault-leak-luer"), "leak"),
        ("needle out of the tumour (target 1 s)", load_scenario("fault-dislodged"), "leak"),
        ("backflow along the tract (target 1 s)", load_scenario("fault-backflow"), "leak"),
        (
            "backflow, irregular breathing and pulse",
            irregular(load_scenario("fault-backflow")),
            "leak",
        ),
        ("sensor open (target 50 ms)", load_scenario("fault-sensor-open"), "sensor_fault"),
        (
            "sensor saturated (target 50 ms)",
            load_scenario("fault-sensor-saturated"),
            "sensor_fault",
        ),
        ("sensor stuck", load_scenario("fault-sensor-stuck"), "sensor_fault"),
        ("sensor noise 15 mmHg rms", load_scenario("fault-sensor-noisy"), "sensor_fault"),
        ("pump stall (A?S)", load_scenario("fault-pump-stall"), "pump_fault"),
    ]
    print(f"detection latency from the true onset ({len(seeds)} seeds each; wrong kind = missed)")
    makers: tuple[tuple[str, Maker], ...] = (("model", model_based), ("fixed", threshold))
    jobs = [(sc, make, s) for _, sc, _ in cases for _, make in makers for s in seeds]
    results = iter(run_all(jobs))
    for label, _, kind in cases:
        for name, _ in makers:
            runs = [next(results) for _ in seeds]
            lat = [r.latency_s if r.verdict and r.verdict.kind == kind else None for r in runs]
            print(f"  {label:54s} {name:5s} {_fmt(lat, len(seeds))}")


def _over_pressure_only(stop: Callable[[Verdict], None]) -> SupervisorLike:
    return OverPressureOnly(SupervisorConfig(pressure_limit_mmhg=200.0), stop)


def over_pressure(seeds: list[int]) -> None:
    print("over-pressure at a 200 mmHg limit: first true sample over the limit -> verdict")
    delays = []
    for seed in seeds:
        scenario = with_rate("fault-occlusion-sudden", 3.0)
        result = run_closed_loop(scenario, _over_pressure_only, seed=seed)
        assert result.verdict is not None and result.verdict.kind == "over_pressure"
        times = result.truth.columns["t_s"]
        values = result.truth.columns["p_transducer_mmhg"]
        first = next(t for t, p in zip(times, values, strict=True) if p > 200.0)
        delays.append(result.verdict.t_mono_s - first)
    print(f"  {'absolute limit (target 10 ms)':54s} model {_fmt(delays, len(seeds))}")


def false_alarms(seeds: list[int], spread: float = 0.0) -> None:
    normal = [irregular(load_scenario(p), spread) for p in scenario_library().values()]
    normal = [s for s in normal if not s.faults]
    runs = len(normal) * len(seeds)
    breathing = (
        f"breathing irregular +-{spread:.0%}, heart rate +-{HEART_IRREGULARITY:.0%}"
        if spread
        else "regular breathing and heartbeat"
    )
    print(
        f"false alarms over {len(normal)} normal scenarios x {len(seeds)} seeds = {runs} runs, "
        f"{breathing}"
    )
    makers: tuple[tuple[str, Maker], ...] = (("model", model_based), ("fixed", threshold))
    jobs = [(sc, make, seed) for _, make in makers for sc in normal for seed in seeds]
    results = iter(run_all(jobs))
    for name, _ in makers:
        alarms: list[str] = []
        worst_error_ul = 0.0
        for scenario in normal:
            for seed in seeds:
                result = next(results)
                if result.verdict is not None:
                    alarms.append(f"{scenario.name}/{seed}: {result.verdict.kind}")
                else:
                    error = abs(result.delivered_ml - scenario.injection.volume_ml) * 1e3
                    worst_error_ul = max(worst_error_ul, error)
        print(
            f"  {name}: {len(alarms)} false alarms in {runs} runs; worst delivered-volume error "
            f"{worst_error_ul:.3f} uL over completed runs"
        )
        for line in alarms[:10]:
            print(f"    {line}")


def bolus(seeds: list[int]) -> None:
    """Occlusion that clears 10 s later: the volume stored above the pre-occlusion level."""
    print("bolus stored when an occlusion clears (1 mL/min; GIP allows 500 uL; target < 20 uL)")
    base = load_scenario("fault-occlusion-sudden")
    fault = base.faults[0].model_copy(update={"duration_s": 10.0})
    scenario = base.model_copy(update={"faults": [fault]})
    for label, relief in (("with relief", True), ("no relief", False)):
        stored = [_bolus_run(scenario, seed, relief) for seed in seeds]
        print(
            f"  model, {label:12s} median {statistics.median(stored):6.1f} uL  "
            f"max {max(stored):6.1f} uL"
        )


def _bolus_run(scenario: Scenario, seed: int, relief: bool) -> float:
    holder: list[Supervisor] = []

    def make(stop: Callable[[Verdict], None]) -> SupervisorLike:
        holder.append(Supervisor(SupervisorConfig(), stop))
        return holder[0]

    def relief_ml(verdict: Verdict) -> float:
        line = holder[0].line
        return min(line.c * max(0.0, holder[0].last_pressure_mmhg - line.level), 0.05)

    result = run_closed_loop(scenario, make, seed=seed, relief_ml=relief_ml if relief else None)
    return _stored_excess_ul(result, scenario)


def _stored_excess_ul(result: LoopResult, scenario: Scenario) -> float:
    assert result.onset is not None
    onset_t = result.onset.t_s
    clear_t = onset_t + 10.0
    p_before = result.truth.value_at("p_line_mmhg", onset_t)
    p_clear = result.truth.value_at("p_line_mmhg", clear_t)
    c_line = scenario.params().c_line
    return max(0.0, c_line * (p_clear - p_before)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    seeds = list(range(1, args.seeds + 1))
    started = time.perf_counter()
    latency_table(seeds[:5])
    over_pressure(seeds[:5])
    bolus(seeds[:5])
    false_alarms(seeds)
    false_alarms(seeds, IRREGULARITY)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
