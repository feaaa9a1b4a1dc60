"""Scripted faults: each fires at a time or a delivered volume and acts on the right part.

Plant faults (occlusion, leak, air ...) change the physics from the next step;
sensor and link faults act on the bridge emulator (or, offline, on the simulated
ADC); pump faults act on the NE-1000 emulator, deferred to the event loop so that
they never run inside the pump model's own step. Every onset is written to the
ground truth with the delivered volume at that moment.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.bridge_emulator import BridgeEmulator
from simulator.ne1000_emulator import NE1000Emulator
from simulator.ne1000_model import NE1000Model
from simulator.plant.model import Plant
from simulator.plant.truth import FaultOnset
from simulator.scenario import FaultSpec
from simulator.transducer_model import TransducerModel

PLANT_KINDS = {"occlusion", "partial_occlusion", "leak", "dislodged", "backflow", "air_in_line"}
SENSOR_FLAGS = {
    "sensor_open": "sensor_open",
    "sensor_saturated": "saturated",
    "sensor_stuck": "stuck",
}


@dataclass
class SensorState:
    """The ADC-side faults, for offline runs that have no bridge emulator."""

    sensor_open: bool = False
    saturated: bool = False
    stuck: bool = False


@dataclass
class FaultTargets:
    plant: Plant
    transducer: TransducerModel
    bridge: BridgeEmulator | None = None
    pump: NE1000Emulator | None = None
    pump_model: NE1000Model | None = None
    sensor: SensorState = field(default_factory=SensorState)
    defer: Callable[[Callable[[], None]], object] = lambda action: action()


@dataclass
class _Active:
    spec: FaultSpec
    onset_s: float
    undo: Callable[[], None] | None


class FaultScheduler:
    def __init__(self, faults: list[FaultSpec], targets: FaultTargets) -> None:
        self.pending = list(faults)
        self.active: list[_Active] = []
        self.targets = targets
        self.motion_start_s: float | None = None
        targets.plant.on_advanced = self.check

    def check(self, plant: Plant) -> None:
        """Called after every plant advance: fire what is due, clear what has expired."""
        t = plant.t_s - plant.t0_s
        if self.motion_start_s is None and plant.delivered_ml > 0:
            self.motion_start_s = t
        for spec in [s for s in self.pending if self._due(s, t, plant.delivered_ml)]:
            self.pending.remove(spec)
            self.fire(spec)
        for active in [a for a in self.active if self._expired(a, t)]:
            self.active.remove(active)
            if active.undo is not None:
                active.undo()

    def _due(self, spec: FaultSpec, t: float, delivered_ml: float) -> bool:
        if spec.at_rig_s is not None:
            return t >= spec.at_rig_s
        if spec.at_volume_ml is not None:
            return delivered_ml >= spec.at_volume_ml
        assert spec.at_s is not None
        return self.motion_start_s is not None and t - self.motion_start_s >= spec.at_s

    @staticmethod
    def _expired(active: _Active, t: float) -> bool:
        duration = active.spec.duration_s
        return duration is not None and t >= active.onset_s + duration

    def inject(self, kind: str, **params: Any) -> None:
        """Fire a fault now (for tests that drive faults by hand)."""
        self.fire(FaultSpec(kind=kind, at_rig_s=0.0, **params))  # type: ignore[arg-type]

    def fire(self, spec: FaultSpec) -> None:
        plant = self.targets.plant
        t = plant.t_s - plant.t0_s
        undo, applied = _apply(spec, self.targets)
        params = spec.model_dump(
            exclude_none=True, exclude={"kind", "at_s", "at_volume_ml", "at_rig_s"}
        )
        plant.truth.onsets.append(FaultOnset(spec.kind, t, plant.delivered_ml, params, applied))
        self.active.append(_Active(spec, t, undo))


def _apply(spec: FaultSpec, targets: FaultTargets) -> tuple[Callable[[], None] | None, bool]:
    """Make the fault happen; return how to undo it, and whether it applied here."""
    if spec.kind in PLANT_KINDS:
        return _apply_plant(spec, targets.plant), True
    if spec.kind.startswith("sensor_"):
        return _apply_sensor(spec, targets), True
    return _apply_link_or_pump(spec, targets)


def _apply_plant(spec: FaultSpec, plant: Plant) -> Callable[[], None]:
    kind = spec.kind
    if kind in ("occlusion", "partial_occlusion"):
        before = plant.occlusion
        if spec.ramp_s > 0:
            plant.occlusion_ramp = (plant.t_s, plant.t_s + spec.ramp_s, before, spec.fraction)
        else:
            plant.occlusion = spec.fraction

        def clear_occlusion() -> None:
            plant.occlusion_ramp = None
            plant.occlusion = before

        return clear_occlusion
    if kind == "leak":
        plant.leak_conductance = 1.0 / (spec.leak_mmhg_per_ml_min * 60.0)
        return lambda: setattr(plant, "leak_conductance", 0.0)
    if kind == "dislodged":
        plant.tissue_factor = spec.tissue_factor
        plant.interstitial_offset = -plant.params.p_interstitial

        def back_in_tumour() -> None:
            plant.tissue_factor, plant.interstitial_offset = 1.0, 0.0

        return back_in_tumour
    if kind == "backflow":
        plant.critical_mmhg = spec.critical_mmhg
        return lambda: setattr(plant, "critical_mmhg", plant.params.p_critical)
    bubble_ml = spec.bubble_ul / 1000.0
    plant.air_ml += bubble_ml
    return lambda: setattr(plant, "air_ml", max(0.0, plant.air_ml - bubble_ml))


def _apply_sensor(spec: FaultSpec, targets: FaultTargets) -> Callable[[], None]:
    kind, plant, transducer = spec.kind, targets.plant, targets.transducer
    if kind == "sensor_drift":
        plant.start_drift(spec.rate_mmhg_per_min)
        return lambda: plant.start_drift(0.0)
    if kind == "sensor_noise":
        before = transducer.noise_mmhg_rms
        transducer.noise_mmhg_rms = spec.noise_mmhg_rms
        return lambda: setattr(transducer, "noise_mmhg_rms", before)
    attribute = {
        "sensor_open": "sensor_open",
        "sensor_saturated": "saturated",
        "sensor_stuck": "stuck",
    }[kind]
    holder: Any = targets.bridge.faults if targets.bridge is not None else targets.sensor
    setattr(holder, attribute, True)
    return lambda: setattr(holder, attribute, False)


def _apply_pump_line(spec: FaultSpec, pump: NE1000Emulator) -> Callable[[], None] | None:
    """Faults of the pump's serial line: slow replies (undone after ``duration_s``), noise,
    corrupted replies."""
    if spec.kind == "pump_slow":
        pump.faults.answer_late(spec.delay_s)
        return lambda: pump.faults.answer_late(0.0)
    if spec.kind == "pump_garbage":
        pump.faults.inject_garbage(spec.n_bytes)
    else:
        pump.faults.corrupt_next_reply(spec.count)
    return None


def _apply_link_or_pump(
    spec: FaultSpec, targets: FaultTargets
) -> tuple[Callable[[], None] | None, bool]:
    bridge, pump, model = targets.bridge, targets.pump, targets.pump_model
    duration = spec.duration_s if spec.duration_s is not None else math.inf
    if spec.kind == "bridge_silence" and bridge is not None:
        bridge.faults.go_silent(duration)
        return None, True
    if spec.kind == "bridge_garbage" and bridge is not None:
        bridge.faults.inject_garbage(spec.n_bytes)
        return None, True
    if spec.kind == "pump_silence" and pump is not None:
        pump.faults.go_silent(duration)
        return None, True
    if spec.kind == "bridge_reboot" and bridge is not None:
        bridge.faults.reboot()
        return None, True
    if pump is not None and spec.kind in ("pump_slow", "pump_garbage", "pump_corrupt"):
        return _apply_pump_line(spec, pump), True
    now = targets.plant.t_s
    if spec.kind == "pump_stall":
        if pump is not None:
            targets.defer(pump.force_stall)
            return None, True
        if model is not None:
            targets.defer(lambda: model.stall(now))
            return None, True
    if spec.kind == "pump_reset":
        if pump is not None:
            targets.defer(pump.power_cycle)
            return None, True
        if model is not None:
            targets.defer(lambda: model.power_cycle(now))
            return None, True
    return None, False
