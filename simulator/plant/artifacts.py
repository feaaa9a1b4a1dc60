"""Physiological and handling artifacts the transducer picks up, deterministic per seed.

Respiration (0.2-0.3 Hz, a few mmHg), cardiac pulsation (1-1.5 Hz, 1-2 mmHg) and spikes
from needle manipulation and patient motion (a fast rise and a decay of tens of ms, at
random times from a Poisson process). Times are relative to the plant's start, so the
same seed gives the same artifacts at the same scenario time in every run.
"""

from __future__ import annotations

import math
import random

from pydantic import BaseModel, ConfigDict, Field

SPIKE_RISE_S = 0.01


class ArtifactConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    respiration_mmhg: float = Field(default=0.0, ge=0, le=50)
    respiration_hz: float = Field(default=0.25, gt=0, le=2)
    # breath-to-breath irregularity: each breath's period and depth drawn uniformly within
    # +-this fraction of the mean (0 = a pure sinusoid; spontaneous breathing is 0.1-0.2)
    respiration_irregularity: float = Field(default=0.0, ge=0, le=0.5)
    cardiac_mmhg: float = Field(default=0.0, ge=0, le=20)
    cardiac_hz: float = Field(default=1.2, gt=0, le=4)
    # beat-to-beat variability of the heart period and pulse depth, as a fraction (resting
    # heart rate variability is a few per cent: RMSSD 20-50 ms at 60-80 beats per minute)
    cardiac_irregularity: float = Field(default=0.0, ge=0, le=0.3)
    spikes_per_min: float = Field(default=0.0, ge=0, le=120)
    spike_mmhg: float = Field(default=20.0, ge=0, le=300)
    spike_decay_s: float = Field(default=0.08, gt=0, le=2)


class Artifacts:
    def __init__(self, config: ArtifactConfig, seed: int) -> None:
        self.config = config
        rng = random.Random(seed)
        self._resp_phase = rng.uniform(0, 2 * math.pi)
        self._card_phase = rng.uniform(0, 2 * math.pi)
        self._spike_rng = random.Random(seed + 7919)
        self._spikes: list[tuple[float, float]] = []  # (start s, signed amplitude mmHg)
        self._horizon_s = 0.0
        c = config
        self._breaths = IrregularRhythm(
            c.respiration_hz,
            c.respiration_mmhg,
            c.respiration_irregularity,
            self._resp_phase,
            random.Random(seed + 104729),
        )
        self._beats = IrregularRhythm(
            c.cardiac_hz,
            c.cardiac_mmhg,
            c.cardiac_irregularity,
            self._card_phase,
            random.Random(seed + 130363),
        )

    @property
    def breaths(self) -> IrregularRhythm:
        """The breathing's cycles (a regular breath is the same sinusoid as cycles of equal
        length and depth): truth for a bench, never for the controller."""
        return self._breaths

    def _extend_spikes(self, until_s: float) -> None:
        rate_per_s = self.config.spikes_per_min / 60.0
        if rate_per_s <= 0:
            self._horizon_s = math.inf
            return
        t = self._spikes[-1][0] if self._spikes else 0.0
        while t < until_s + 10.0:
            t += self._spike_rng.expovariate(rate_per_s)
            amplitude = self.config.spike_mmhg * self._spike_rng.uniform(0.5, 1.0)
            self._spikes.append((t, amplitude if self._spike_rng.random() < 0.8 else -amplitude))
        self._horizon_s = t - 10.0

    def at(self, t_s: float) -> float:
        """Artifact pressure (mmHg) at scenario time ``t_s``."""
        c = self.config
        value = 0.0
        if c.respiration_mmhg and c.respiration_irregularity:
            phase, depth = self._breaths.at(t_s)
            value += depth * math.sin(phase)
        elif c.respiration_mmhg:
            value += c.respiration_mmhg * math.sin(
                2 * math.pi * c.respiration_hz * t_s + self._resp_phase
            )
        if c.cardiac_mmhg:
            if c.cardiac_irregularity:
                phase, depth = self._beats.at(t_s)
            else:
                phase, depth = 2 * math.pi * c.cardiac_hz * t_s + self._card_phase, c.cardiac_mmhg
            value += depth * (0.8 * math.sin(phase) + 0.2 * math.sin(2 * phase))
        if c.spikes_per_min:
            value += self._spikes_at(t_s)
        return value

    def _spikes_at(self, t_s: float) -> float:
        if t_s > self._horizon_s:
            self._extend_spikes(t_s)
        decay = self.config.spike_decay_s
        total = 0.0
        for start, amplitude in reversed(self._spikes):
            if start > t_s:
                continue
            age = t_s - start
            if age > 8 * decay:
                break
            rise = min(1.0, age / SPIKE_RISE_S)
            total += amplitude * rise * math.exp(-max(0.0, age - SPIKE_RISE_S) / decay)
        return total

    def spike_times(self, until_s: float) -> list[float]:
        self._extend_spikes(until_s)
        return [t for t, _ in self._spikes if t <= until_s]


class IrregularRhythm:
    """Breaths or heartbeats of varying length and depth, cycle to cycle.

    Each cycle's period and depth are drawn uniformly within +-``irregularity`` of the
    mean; a cycle starts where the last one ended (phase 0), so the waveform stays
    continuous. ``at`` gives the phase (radians) and depth of the cycle holding ``t_s``.
    """

    def __init__(
        self, hz: float, depth: float, irregularity: float, phase: float, rng: random.Random
    ) -> None:
        self.mean_period_s = 1.0 / hz
        self.depth = depth
        self.irregularity = irregularity
        self.rng = rng
        start = -phase / (2 * math.pi) * self.mean_period_s
        # (start s, period s, depth)
        self._cycles: list[tuple[float, float, float]] = [(start, self.mean_period_s, depth)]

    def at(self, t_s: float) -> tuple[float, float]:
        start, period, depth = self.cycle_at(t_s)
        return 2 * math.pi * (t_s - start) / period, depth

    def cycle_at(self, t_s: float) -> tuple[float, float, float]:
        """(start s, period s, depth) of the cycle holding ``t_s``: the truth a bench may
        compare a predictor with (``bench.breath_predictability``), never the controller."""
        cycles = self._cycles
        while cycles[-1][0] + cycles[-1][1] <= t_s:
            start, period, _ = cycles[-1]
            spread = self.irregularity
            next_period = self.mean_period_s * self.rng.uniform(1 - spread, 1 + spread)
            depth = self.depth * self.rng.uniform(1 - spread, 1 + spread)
            cycles.append((start + period, next_period, depth))
            if len(cycles) > 64:
                del cycles[:32]
        for cycle in reversed(cycles):
            if cycle[0] <= t_s:
                return cycle
        return cycles[0]
