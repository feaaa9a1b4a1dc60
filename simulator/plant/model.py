"""Lumped two-node model of syringe, line, needle and tissue, stepped at 1 kHz or faster.

    pump --q_in--> [line node: syringe + line + dome, compliance C_L, pressure P_L]
                      |  needle + extension line, Hagen-Poiseuille R_n (occlusion scales it)
                      |  leak to atmosphere G_leak (Luer disconnection)
                   [tip node: tissue, compliance C_T, pressure P_T]
                      |  tissue resistance R_t(V) to interstitial pressure P_i
                      |  needle-tract backflow R_b to atmosphere, open above P_crit

Each step solves the two node equations by backward Euler (a 2x2 linear system), which
is stable however stiff the path gets (an open Luer, a needle in open water). The
transducer sits on the line node and reads ``P_L + rho g h + artifacts + drift``.

The plant is the NE-1000 emulator's ``PlungerHook`` (plunger volume in, stall out) and
the bridge emulator's ``PressureSource`` (pressure at a time out). Volume is conserved:
every plunger microlitre goes into the line node in the step it moved.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from controller.procedure.fluid_path import FluidPath
from simulator.plant import hydraulics as h
from simulator.plant.artifacts import ArtifactConfig, Artifacts
from simulator.plant.profiles import PlantConfig, Tissue
from simulator.plant.spread import PlantTruth
from simulator.plant.truth import FaultOnset, GroundTruth

MAX_STEP_S = 0.001
RECENT_STEPS = 64
MIN_PRESSURE_MMHG = -700.0  # a syringe pulled against a closed line cannot go below vacuum


class Advanceable(Protocol):
    def advance(self, now_s: float) -> None: ...


@dataclass(frozen=True)
class PlantParams:
    """Everything the equations need, in internal units (mmHg, mL, s)."""

    r_needle: float
    r_extension: float
    c_line: float
    p_interstitial: float
    r_tissue: float
    tissue_growth_per_ml: float
    c_tissue: float
    p_critical: float
    r_tract: float
    hydrostatic_mmhg: float
    plunger_area_m2: float
    stall_force_n: float
    friction_n: float

    @classmethod
    def build(
        cls,
        *,
        path: FluidPath,
        tissue: Tissue,
        config: PlantConfig,
        truth: PlantTruth | None = None,
        transducer_height_cm: float | None = None,
    ) -> PlantParams:
        """The true plant: the catalog's fluid path and the tissue, moved by ``truth``."""
        truth = truth or PlantTruth()
        height = (
            config.transducer_height_cm if transducer_height_cm is None else transducer_height_cm
        )
        viscous = truth.viscosity_factor  # Hagen-Poiseuille R is proportional to viscosity
        return cls(
            r_needle=path.needle_resistance * viscous,
            r_extension=path.extension_resistance * viscous,
            c_line=path.compliance_ml_per_mmhg * truth.compliance_factor,
            p_interstitial=tissue.interstitial_mmhg * truth.interstitial_factor,
            r_tissue=h.per_ml_min_to_per_ml_s(tissue.resistance_mmhg_per_ml_min)
            * truth.tissue_resistance_factor,
            tissue_growth_per_ml=tissue.growth_per_ml,
            c_tissue=tissue.compliance_ul_per_mmhg * 1e-3,
            p_critical=tissue.critical_mmhg * truth.critical_factor,
            r_tract=h.per_ml_min_to_per_ml_s(tissue.tract_resistance_mmhg_per_ml_min),
            hydrostatic_mmhg=-height * h.WATER_MMHG_PER_CM,
            plunger_area_m2=h.plunger_area_m2(path.syringe.inner_diameter_mm),
            stall_force_n=config.pump.stall_force_n,
            friction_n=config.pump.stopper_friction_n,
        )

    def steady_line_pressure(self, q_ml_min: float) -> float:
        """Hagen-Poiseuille expectation with the tissue at its interstitial pressure."""
        return self.p_interstitial + h.ml_min_to_ml_s(q_ml_min) * (self.r_needle + self.r_extension)


class Plant:
    def __init__(
        self,
        params: PlantParams,
        *,
        artifacts: ArtifactConfig | None = None,
        seed: int = 0,
        t0_s: float = 0.0,
        max_step_s: float = MAX_STEP_S,
        truth_every_s: float = 0.0,
    ) -> None:
        self.params = params
        # ground truth is written every step (0) or every ``truth_every_s``: benchmarks that
        # need only onsets and volumes run a plant several times faster with 0.01
        self.truth_every_s = truth_every_s
        self._next_truth_s = t0_s
        # the line pressure of the last steps, for a transducer sample taken a little in the
        # past (the pump may have moved the plant beyond the sample's time)
        self._recent: deque[tuple[float, float]] = deque(maxlen=RECENT_STEPS)
        self.artifacts = Artifacts(artifacts or ArtifactConfig(), seed)
        self.max_step_s = max_step_s
        self.t0_s = t0_s
        self.t_s = t0_s
        self.p_line = params.p_interstitial
        self.p_tip = params.p_interstitial
        self.delivered_ml = self.tissue_ml = self.backflow_ml = self.leak_ml = 0.0
        self.cracked = False
        # what faults change
        self.occlusion = 0.0  # fraction of the needle's conductance lost, 0..1
        self.occlusion_ramp: tuple[float, float, float, float] | None = None  # t0, t1, f0, f1
        self.leak_conductance = 0.0
        self.tissue_factor = 1.0
        self.interstitial_offset = 0.0
        self.air_ml = 0.0
        self.critical_mmhg = params.p_critical
        self.drift_mmhg_per_s = 0.0
        self.drift_since_s = 0.0
        self.drift_base_mmhg = 0.0
        self.stopcock_to_air = False  # transducer and syringe side open to atmosphere (zeroing)
        self.reference_mmhg: float | None = None  # a bench manometer on the stopcock's port
        self.pump: Advanceable | None = None
        self.on_advanced: Callable[[Plant], None] | None = None
        self.truth = GroundTruth()
        self.truth.t0_mono_s = t0_s
        self._record(0.0, 0.0, 0.0, 0.0, 0.0)

    # ------------------------------------------------------------ the two interfaces
    def on_plunger(self, t_mono_s: float, dt_s: float, flow_ml_min: float) -> bool:
        """``PlungerHook``: the pump moved ``flow * dt`` mL ending at ``t_mono_s``."""
        self.advance_to(t_mono_s, flow_ml_min * dt_s / 60.0)
        return self.stalled()

    def pressure_mmhg(self, t_mono_s: float) -> float:
        """``PressureSource``: what the transducer sees at ``t_mono_s``."""
        if self.pump is not None:
            self.pump.advance(t_mono_s)
        self.advance_to(t_mono_s, 0.0)
        if t_mono_s >= self.t_s:
            return self.transducer_mmhg()
        p_line = self._recent[0][1] if self._recent else self.p_line
        for t_step, p_step in reversed(self._recent):
            if t_step <= t_mono_s:
                p_line = p_step
                break
        return self._transducer_at(t_mono_s, p_line)

    # ------------------------------------------------------------ integration
    def advance_to(self, t_s: float, plunger_ml: float) -> None:
        """Integrate to ``t_s`` with ``plunger_ml`` pushed in evenly over the interval."""
        span = t_s - self.t_s
        if span <= 0:
            if plunger_ml:
                self._step(1e-6, plunger_ml / 1e-6)
            return
        steps = max(1, math.ceil(span / self.max_step_s - 1e-6))  # no extra step for float dust
        dt = span / steps
        q_in = plunger_ml / span
        for _ in range(steps):
            self._step(dt, q_in)
        if self.on_advanced is not None:
            self.on_advanced(self)

    def _step(self, dt: float, q_in: float) -> None:
        p = self.params
        self.t_s += dt
        g_n = self._needle_conductance()
        # the stopcock turned to air vents the syringe side of the line: it falls to
        # atmosphere, and refills from the tissue through the needle once turned back
        g_leak = self.leak_conductance + (h.OPEN_CONDUCTANCE if self.stopcock_to_air else 0.0)
        r_t = p.r_tissue * self.tissue_factor * (1.0 + p.tissue_growth_per_ml * self.tissue_ml)
        g_t = h.conductance(r_t)
        g_b = 1.0 / p.r_tract if self.cracked else 0.0
        p_i = p.p_interstitial + self.interstitial_offset
        c_l = (p.c_line + h.air_compliance(self.air_ml, self.p_line)) / dt
        c_t = p.c_tissue / dt
        a11, a12 = c_l + g_n + g_leak, -g_n
        a21, a22 = -g_n, c_t + g_n + g_t + g_b
        b1 = c_l * self.p_line + q_in
        b2 = c_t * self.p_tip + g_t * p_i
        det = a11 * a22 - a12 * a21
        p_line = max(MIN_PRESSURE_MMHG, (b1 * a22 - a12 * b2) / det)
        p_tip = (a11 * b2 - a21 * b1) / det
        q_needle = g_n * (p_line - p_tip)
        q_tissue = g_t * (p_tip - p_i)
        q_back = g_b * p_tip
        q_leak = g_leak * p_line
        self.p_line, self.p_tip = p_line, p_tip
        self.delivered_ml += q_in * dt
        self.tissue_ml += q_tissue * dt
        self.backflow_ml += q_back * dt
        self.leak_ml += q_leak * dt
        self._recent.append((self.t_s, p_line))
        if p_tip > self.critical_mmhg:
            if not self.cracked:  # the tissue gives way: the truth says so, fault or not
                self.truth.onsets.append(
                    FaultOnset("crack", self.t_s - self.t0_s, self.delivered_ml, {}, True)
                )
            self.cracked = True
        elif self.cracked and p_tip < 0.2 * self.critical_mmhg:
            self.cracked = False
        if self.t_s >= self._next_truth_s:
            self._next_truth_s = self.t_s + self.truth_every_s
            self._record(q_in, q_needle, q_tissue, q_back, q_leak)

    def _needle_conductance(self) -> float:
        ramp = self.occlusion_ramp
        if ramp is not None:
            t0, t1, f0, f1 = ramp
            if self.t_s >= t1:
                self.occlusion, self.occlusion_ramp = f1, None
            else:
                self.occlusion = f0 + (f1 - f0) * max(0.0, self.t_s - t0) / (t1 - t0)
        open_fraction = 1.0 - self.occlusion
        if open_fraction <= 1e-9:
            return 0.0
        p = self.params
        return 1.0 / (p.r_needle / open_fraction + p.r_extension)

    def _record(self, q_in: float, q_n: float, q_t: float, q_b: float, q_l: float) -> None:
        artifact = self.artifacts.at(self.t_s - self.t0_s)
        reading = self._reading(self.t_s, self.p_line, artifact)
        to_min = 60.0
        self.truth.append(
            (
                self.t_s - self.t0_s,
                q_in * to_min,
                q_n * to_min,
                q_t * to_min,
                q_b * to_min,
                q_l * to_min,
                self.p_line,
                self.p_tip,
                reading,
                artifact,
                self.delivered_ml,
                self.tissue_ml,
                self.backflow_ml,
                self.leak_ml,
            )
        )

    # ------------------------------------------------------------ readings
    def _reading(self, t_s: float, p_line: float, artifact: float) -> float:
        """What a perfect transducer reads: the line, or air, or a manometer, plus drift."""
        drift = self.drift_base_mmhg + self.drift_mmhg_per_s * (t_s - self.drift_since_s)
        if self.stopcock_to_air:
            return drift
        if self.reference_mmhg is not None:
            return self.reference_mmhg + drift
        return p_line + self.params.hydrostatic_mmhg + artifact + drift

    def _transducer_at(self, t_s: float, p_line: float) -> float:
        return self._reading(t_s, p_line, self.artifacts.at(t_s - self.t0_s))

    def transducer_mmhg(self) -> float:
        """The reading now (artifacts computed when read, not at every step)."""
        return self._transducer_at(self.t_s, self.p_line)

    def plunger_force_n(self) -> float:
        return self.p_line * h.PA_PER_MMHG * self.params.plunger_area_m2 + self.params.friction_n

    def stalled(self) -> bool:
        return self.plunger_force_n() > self.params.stall_force_n

    def start_drift(self, rate_mmhg_per_min: float) -> None:
        self.drift_base_mmhg += self.drift_mmhg_per_s * (self.t_s - self.drift_since_s)
        self.drift_mmhg_per_s = rate_mmhg_per_min / 60.0
        self.drift_since_s = self.t_s

    def stored_ml(self) -> float:
        """Volume held by the compliances (what an occlusion releases as a bolus)."""
        p = self.params
        return p.c_line * (self.p_line - p.p_interstitial) + p.c_tissue * (
            self.p_tip - p.p_interstitial
        )
