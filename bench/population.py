"""A population of plants, operators and links for the detection benchmark.

Each case is drawn from its class and seed: the fluid path from the catalogs, the true
plant around them (compliance 0.5-2x the catalog, viscosity, tissue resistance and
interstitial pressure), breathing and pulse at rest and while infusing (irregular),
handling spikes, sensor noise, zero offset and drift, reply latency and line noise on
both links, the operator's timing (air, settle, repositioning between radial aliquots,
pause and resume), and for the fault classes the fault and its onset. The ranges and
their sources are in ``docs/simulator.md`` ("The population").
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import pickle
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from bench.closed_loop import Case, Operator
from controller.procedure.catalog import load_syringes
from controller.procedure.fluid_path import FluidPath
from drivers.ne1000_protocol import rate_limits_ml_min
from simulator.plant.artifacts import ArtifactConfig
from simulator.plant.profiles import load_tissues
from simulator.plant.spread import TruthSpread
from simulator.scenario import FaultSpec, InjectionPlan, LinkNoise, Scenario, TransducerSetup

NORMAL = "normal"
FAULT_CLASSES = (
    "occlusion@0.2",
    "occlusion@1",
    "occlusion@5",
    "luer-disconnection",
    "needle-out",
    "tissue-crack",
    "sensor-fault",
    "link-fault",
)
EXPECT = {
    "occlusion@0.2": "occlusion",
    "occlusion@1": "occlusion",
    "occlusion@5": "occlusion",
    "luer-disconnection": "leak",
    "needle-out": "leak",
    "tissue-crack": "leak",
    "sensor-fault": "sensor_fault",
    "link-fault": "link_lost",
}
TISSUES = ("liver", "liver", "lymph-node", "subcutaneous", "lung")
NEEDLES = ("22g-coaxial-150mm", "22g-coaxial-150mm", "22g-90mm", "22g-38mm")
DRUGS = ("saline-37c", "saline", "tlr-agonist", "mab-50", "oncolytic-virus", "mab-150")
SYRINGES = ("bd-luerlok-1ml", "bd-luerlok-3ml", "bd-luerlok-5ml")
LINE = "dpt-microbore-300mm"
CRACK_MARGIN = 1.5  # the tissue's cracking pressure at least this far above the tip's
MAX_STEADY_MMHG = 500.0  # rates are drawn so the line stays well under the 900 mmHg limit


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def pinned(value: float) -> tuple[float, float]:
    return (value, value)


def draw(klass: str, seed: int) -> Case:
    """The case of this class and seed (deterministic)."""
    rng = random.Random(f"{klass}/{seed}")
    interstitial = rng.uniform(4.0, 40.0)
    wanted = _rate(klass, rng)
    syringe = _syringe(rng, wanted)
    for _ in range(200):  # a tissue, needle and drug that carry the class's rate
        tissue_id = rng.choice(TISSUES)
        tissue = load_tissues()[tissue_id]
        needle, drug = rng.choice(NEEDLES), rng.choice(DRUGS)
        path = FluidPath.from_ids(syringe, LINE, needle, drug)
        rate = _capped_rate(wanted, path, tissue.resistance_mmhg_per_ml_min, interstitial)
        if rate == wanted or not klass.startswith("occlusion@"):
            break
    volume = rng.uniform(0.5, 2.0) if klass == NORMAL else rng.uniform(1.0, 2.0)
    volume = min(volume, load_syringes()[syringe].nominal_volume_ml)
    resistance_factor = log_uniform(rng, 0.5, 2.0)
    tip_mmhg = interstitial + rate * tissue.resistance_mmhg_per_ml_min * resistance_factor * (
        1.0 + tissue.growth_per_ml * volume
    )
    # the tissue holds what the protocol asks of it (a crack is its own fault class)
    critical_factor = max(1.0, CRACK_MARGIN * tip_mmhg / tissue.critical_mmhg)
    truth = TruthSpread(
        compliance_factor=pinned(log_uniform(rng, 0.5, 2.0)),
        viscosity_factor=pinned(rng.uniform(0.85, 1.25)),
        tissue_resistance_factor=pinned(resistance_factor),
        interstitial_factor=pinned(interstitial / max(tissue.interstitial_mmhg, 1.0)),
        critical_factor=pinned(critical_factor * rng.uniform(1.0, 1.5)),
    )
    scenario = Scenario(
        name=f"{klass}#{seed}",
        seed=seed,
        syringe=syringe,
        needle=needle,
        drug=drug,
        tissue=tissue_id,
        line=LINE,
        truth=truth,
        expect=EXPECT.get(klass, "complete"),
        injection=InjectionPlan(volume_ml=round(volume, 3), rate_ml_min=round(rate, 4)),
        artifacts=_artifacts(rng),
        transducer=_transducer(rng),
        links=_links(rng),
        faults=_faults(klass, rng, rate, volume, interstitial),
    )
    return Case(scenario, operator=_operator(klass, rng), request=_technique(klass, rng))


def _rate(klass: str, rng: random.Random) -> float:
    if klass.startswith("occlusion@"):
        return float(klass.split("@")[1])
    if klass == NORMAL:
        return log_uniform(rng, 0.2, 5.0)
    return log_uniform(rng, 0.5, 3.0)


def _syringe(rng: random.Random, rate: float) -> str:
    able = [s for s in SYRINGES if rate <= rate_limits_ml_min(_diameter(s))[1] * 0.95]
    return rng.choice(able)


def _diameter(syringe: str) -> float:
    return load_syringes()[syringe].inner_diameter_mm


def _capped_rate(rate: float, path: FluidPath, tissue_per_ml_min: float, p_i: float) -> float:
    """The drawn rate, lowered if the line would sit near the pressure limit (a protocol
    would not prescribe that rate for that drug and needle)."""
    per_ml_min = path.resistance / 60.0 + 2.0 * tissue_per_ml_min
    return min(rate, max(0.2, (MAX_STEADY_MMHG - p_i) / per_ml_min))


def _artifacts(rng: random.Random) -> ArtifactConfig:
    return ArtifactConfig(
        respiration_mmhg=rng.uniform(0.0, 5.0),  # amplitude: 0-10 mmHg peak to peak
        respiration_hz=rng.uniform(10, 20) / 60.0,
        respiration_irregularity=rng.uniform(0.0, 0.2),
        cardiac_mmhg=rng.uniform(0.3, 2.0),
        cardiac_hz=rng.uniform(50, 120) / 60.0,
        cardiac_irregularity=rng.uniform(0.0, 0.05),
        spikes_per_min=rng.uniform(0.0, 2.0),
        spike_mmhg=rng.uniform(5.0, 20.0),
    )


def _transducer(rng: random.Random) -> TransducerSetup:
    return TransducerSetup(
        zero_offset_mmhg=rng.uniform(-25.0, 25.0),
        sensitivity_error=rng.uniform(-0.02, 0.02),
        noise_mmhg_rms=rng.uniform(0.1, 1.5),
        drift_mmhg_per_h=rng.uniform(-2.0, 2.0),
    )


def _links(rng: random.Random) -> LinkNoise:
    return LinkNoise(
        pump_reply_delay_s=rng.uniform(0.002, 0.05),
        bridge_garbage_per_s=rng.choice((0.0, 0.0, 0.2, 1.0)),
        pump_garbage_per_s=rng.choice((0.0, 0.0, 0.05, 0.2)),
        burst_bytes=rng.randint(4, 32),
    )


def _operator(klass: str, rng: random.Random) -> Operator:
    pause = klass == NORMAL and rng.random() < 0.2
    return Operator(
        air_s=rng.uniform(1.0, 3.0),
        settle_s=rng.uniform(1.0, 8.0),
        reposition_s=tuple(rng.uniform(1.0, 30.0) for _ in range(4)),
        pause_at_ml=rng.uniform(0.2, 0.4) if pause else None,
        pause_s=rng.uniform(1.0, 20.0) if pause else 0.0,
    )


def _technique(klass: str, rng: random.Random) -> dict[str, object]:
    """Radial aliquots in a third of the normal runs."""
    if klass == NORMAL and rng.random() < 0.33:
        return {"aliquots": rng.randint(2, 4)}
    return {}


def _faults(
    klass: str, rng: random.Random, rate: float, volume: float, interstitial: float
) -> list[FaultSpec]:
    if klass == NORMAL:
        return []
    duration_s = 60.0 * volume / rate
    at_s = min(rng.uniform(8.0, 20.0), 0.6 * duration_s)
    makers: dict[str, Callable[[], dict[str, object]]] = {
        "luer-disconnection": lambda: {"kind": "leak", "leak_mmhg_per_ml_min": 0.05},
        "needle-out": lambda: {"kind": "dislodged", "tissue_factor": rng.uniform(0.05, 0.2)},
        "tissue-crack": lambda: {"kind": "backflow", "critical_mmhg": interstitial + 1.0},
        "sensor-fault": lambda: {
            "kind": rng.choice(("sensor_open", "sensor_saturated", "sensor_stuck"))
        },
        "link-fault": lambda: {"kind": rng.choice(("bridge_silence", "pump_silence"))},
    }
    make = makers.get(klass, lambda: {"kind": "occlusion", "fraction": 1.0})
    return [FaultSpec.model_validate({**make(), "at_s": round(at_s, 3)})]


def cases(klass: str, count: int, first_seed: int = 1) -> list[Case]:
    return [draw(klass, seed) for seed in range(first_seed, first_seed + count)]


Recorded = TypeVar("Recorded")


def record_population(
    record: Callable[[tuple[str, int]], Recorded],
    classes: Sequence[str],
    per_class: int,
    normal: int,
    jobs: int,
    *,
    first_seed: int = 1,
    save: Path | None = None,
) -> list[Recorded]:
    """``record`` of every (class, seed) of the population (seeds from ``first_seed``;
    ``normal`` of the normal class, ``per_class`` of the others) on ``jobs`` processes, in
    the order they finish, with progress on stderr every 50 cases; kept so far in ``save``
    (a pickle) every 10, so a long run can be read, or stopped and resumed, before it ends."""
    specs = [
        (klass, seed)
        for klass in classes
        for seed in range(first_seed, first_seed + (normal if klass == NORMAL else per_class))
    ]
    recorded: list[Recorded] = []
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for done, item in enumerate(pool.imap_unordered(record, specs), start=1):
            recorded.append(item)
            if done % 50 == 0 or done == len(specs):
                print(f"{done}/{len(specs)} cases", file=sys.stderr, flush=True)
            if save is not None and (done % 10 == 0 or done == len(specs)):
                save.write_bytes(pickle.dumps(recorded))
    return recorded


def population_parser(description: str, classes: str) -> argparse.ArgumentParser:
    """The command line the margin benches share: which cases, on how many processes, where
    the recordings are kept (``--save``) and read again (``--load``, merged: a run stopped
    and resumed from a later ``--first-seed``). A bench adds its own grid to it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--classes", default=classes)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--normal", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--save", type=Path, help="keep the recordings (pickle), every 10 cases")
    parser.add_argument(
        "--load", type=Path, nargs="+", help="report on recordings kept by --save (merged)"
    )
    return parser


def recorded_or_loaded(
    args: argparse.Namespace, record: Callable[[tuple[str, int]], Recorded]
) -> list[Recorded]:
    """The recordings ``--load`` names (our own pickles), else ``record`` of the population
    the arguments of ``population_parser`` ask for."""
    if args.load:
        loaded: list[Recorded] = []
        for path in args.load:
            loaded.extend(pickle.loads(path.read_bytes()))
        return loaded
    return record_population(
        record,
        args.classes.split(","),
        args.per_class,
        args.normal,
        args.jobs,
        first_seed=args.first_seed,
        save=args.save,
    )


def all_classes() -> tuple[str, ...]:
    return (NORMAL, *FAULT_CLASSES)
