"""Scenario files: syringe, needle, drug, tissue, seed, artifacts and timed faults.

A scenario is TOML, validated by pydantic, with ids checked against the catalogs,
so a typo stops the load with the file and the field named. See
``config/scenarios/`` for the library and ``docs/simulator.md`` for the format.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from controller.procedure.catalog import (
    CONFIG_DIR,
    DEFAULT_LINE,
    CatalogError,
    load_drugs,
    load_lines,
    load_needles,
    load_syringes,
)
from controller.procedure.fluid_path import FluidPath
from simulator.plant.artifacts import ArtifactConfig
from simulator.plant.model import Plant, PlantParams
from simulator.plant.profiles import load_plant_config, load_tissues
from simulator.plant.spread import PlantTruth, TruthSpread
from simulator.transducer_model import TransducerModel

SCENARIO_DIR = CONFIG_DIR / "scenarios"

FaultKind = Literal[
    "occlusion",
    "partial_occlusion",
    "leak",
    "dislodged",
    "backflow",
    "air_in_line",
    "sensor_open",
    "sensor_saturated",
    "sensor_stuck",
    "sensor_drift",
    "sensor_noise",
    "bridge_silence",
    "bridge_garbage",
    "pump_silence",
    "pump_stall",
    "pump_reset",
    "pump_slow",
    "pump_garbage",
    "pump_corrupt",
    "bridge_reboot",
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]


class FaultSpec(BaseModel):
    """One scripted fault: what, when (exactly one trigger), and its parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    at_s: float | None = Field(default=None, ge=0, description="s after the pump first moves")
    at_volume_ml: float | None = Field(default=None, ge=0, description="delivered volume")
    at_rig_s: float | None = Field(default=None, ge=0, description="s after the simulator starts")
    duration_s: float | None = Field(default=None, gt=0, description="then the fault clears")
    ramp_s: float = Field(default=0.0, ge=0, description="occlusions: time to full effect")
    fraction: float = Field(default=1.0, gt=0, le=1, description="occlusion: conductance lost")
    leak_mmhg_per_ml_min: float = Field(default=2.0, gt=0, description="leak path resistance")
    tissue_factor: float = Field(default=0.1, gt=0, le=1, description="dislodged: resistance left")
    critical_mmhg: float = Field(default=60.0, gt=0, description="backflow: new cracking pressure")
    bubble_ul: float = Field(default=200.0, gt=0, le=5000, description="air at atmosphere")
    rate_mmhg_per_min: float = Field(default=10.0, description="sensor drift")
    noise_mmhg_rms: float = Field(default=5.0, ge=0, description="sensor noise")
    n_bytes: int = Field(default=64, ge=1, le=100000, description="garbage bytes")
    delay_s: float = Field(default=0.3, gt=0, le=10, description="pump_slow: reply delay")
    count: int = Field(default=1, ge=1, le=1000, description="pump_corrupt: replies")

    @model_validator(mode="after")
    def _one_trigger(self) -> FaultSpec:
        given = [x for x in (self.at_s, self.at_volume_ml, self.at_rig_s) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of at_s, at_volume_ml, at_rig_s")
        return self


class InjectionPlan(BaseModel):
    """What the operator (or the offline run's scripted host) does with the pump."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    volume_ml: float = Field(gt=0, le=60)
    rate_ml_min: float = Field(gt=0, le=100)
    start_s: float = Field(default=1.0, ge=0, description="offline runs: RUN at this time")


class TransducerSetup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    zero_offset_mmhg: float = 6.0
    sensitivity_error: float = Field(default=0.012, ge=-0.2, le=0.2)
    noise_mmhg_rms: float = Field(default=0.15, ge=0, le=50)
    height_cm: float | None = Field(default=None, ge=-100, le=100)
    drift_mmhg_per_h: float = Field(default=0.0, ge=-60, le=60, description="from the start")

    def model(self) -> TransducerModel:
        return TransducerModel(
            zero_offset_mmhg=self.zero_offset_mmhg,
            sensitivity_error=self.sensitivity_error,
            noise_mmhg_rms=self.noise_mmhg_rms,
        )


class LinkNoise(BaseModel):
    """What ordinary cables and adapters do to the serial links, all through a run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pump_reply_delay_s: float = Field(default=0.0, ge=0, le=0.2, description="every reply")
    bridge_garbage_per_s: float = Field(default=0.0, ge=0, le=20, description="bursts")
    pump_garbage_per_s: float = Field(default=0.0, ge=0, le=5, description="bursts")
    burst_bytes: int = Field(default=8, ge=1, le=256)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    seed: int = 0
    syringe: str
    needle: str
    drug: str
    tissue: str
    line: str = DEFAULT_LINE
    truth: TruthSpread = TruthSpread()  # how far the plant's truth is from the catalogs
    expect: str = Field(default="complete", description="'complete' or the alarm it must raise")
    injection: InjectionPlan
    artifacts: ArtifactConfig = ArtifactConfig()
    transducer: TransducerSetup = TransducerSetup()
    links: LinkNoise = LinkNoise()
    faults: list[FaultSpec] = []

    @property
    def fluid_path(self) -> FluidPath:
        """What the catalogs say of this scenario's path (what the controller knows)."""
        return FluidPath.from_ids(self.syringe, self.line, self.needle, self.drug)

    @property
    def plant_truth(self) -> PlantTruth:
        """The factors this scenario and seed draw (what the controller never knows)."""
        return self.truth.draw(self.seed)

    def params(self) -> PlantParams:
        return PlantParams.build(
            path=self.fluid_path,
            tissue=load_tissues()[self.tissue],
            config=load_plant_config(),
            truth=self.plant_truth,
            transducer_height_cm=self.transducer.height_cm,
        )

    def build_plant(
        self, t0_s: float = 0.0, max_step_s: float = 0.001, truth_every_s: float = 0.0
    ) -> Plant:
        plant = Plant(
            self.params(),
            artifacts=self.artifacts,
            seed=self.seed,
            t0_s=t0_s,
            max_step_s=max_step_s,
            truth_every_s=truth_every_s,
        )
        if self.transducer.drift_mmhg_per_h:
            plant.start_drift(self.transducer.drift_mmhg_per_h / 60.0)
        return plant

    @property
    def diameter_mm(self) -> float:
        return load_syringes()[self.syringe].inner_diameter_mm


def _check_ids(path: Path, scenario: Scenario) -> None:
    catalogs: dict[str, set[str]] = {
        "syringe": set(load_syringes()),
        "needle": set(load_needles()),
        "drug": set(load_drugs()),
        "line": set(load_lines()),
        "tissue": set(load_tissues()),
    }
    for field, catalog in catalogs.items():
        value = getattr(scenario, field)
        if value not in catalog:
            known = ", ".join(sorted(catalog))
            raise CatalogError(f"{path}: {field} {value!r} is not in the catalog ({known})")


def load_scenario(path_or_name: str | Path) -> Scenario:
    """A scenario file, or the name of one in ``config/scenarios/``."""
    path = Path(path_or_name)
    if not path.exists() and (SCENARIO_DIR / f"{path_or_name}.toml").exists():
        path = SCENARIO_DIR / f"{path_or_name}.toml"
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CatalogError(f"{path}: {where}: {first['msg']}") from None
    _check_ids(path, scenario)
    return scenario


def scenario_library() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.toml"))}
