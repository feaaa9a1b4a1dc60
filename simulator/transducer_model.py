"""The disposable pressure transducer and the ADC as they really are, for the emulator.

A real transducer is never exactly nominal: its zero sits a few mmHg off and its
sensitivity a percent or so off 5 uV/V/mmHg. The emulator gives the host those
errors so that zeroing and calibration have something real to find.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

ADC_BITS = 24
PGA_GAIN = 128
SENSITIVITY_V_PER_V_MMHG = 5e-6
NOMINAL_COUNTS_PER_MMHG = SENSITIVITY_V_PER_V_MMHG * PGA_GAIN * float(1 << (ADC_BITS - 1))
RAW_MAX = (1 << (ADC_BITS - 1)) - 1
RAW_MIN = -(1 << (ADC_BITS - 1))


class PressureSource(Protocol):
    """What the transducer sees: pressure at the transducer, in mmHg, at a host time."""

    def pressure_mmhg(self, t_mono_s: float) -> float: ...


class ConstantPressure:
    """A pressure that stays where it is put (a bench manometer, or a syringe at rest)."""

    def __init__(self, pressure_mmhg: float = 0.0) -> None:
        self.value_mmhg = pressure_mmhg

    def pressure_mmhg(self, t_mono_s: float) -> float:
        return self.value_mmhg


@dataclass
class TransducerModel:
    """Transducer + ADC: pressure in, signed ADC counts out."""

    zero_offset_mmhg: float = 6.0
    sensitivity_error: float = 0.012
    noise_mmhg_rms: float = 0.15
    excitation_mv: int = 2500

    @property
    def counts_per_mmhg(self) -> float:
        return NOMINAL_COUNTS_PER_MMHG * (1.0 + self.sensitivity_error)

    def raw(self, pressure_mmhg: float, rng: random.Random) -> int:
        noise = rng.gauss(0.0, self.noise_mmhg_rms) if self.noise_mmhg_rms > 0 else 0.0
        counts = round((pressure_mmhg + self.zero_offset_mmhg + noise) * self.counts_per_mmhg)
        return max(RAW_MIN, min(RAW_MAX, counts))

    def pressure_of(self, raw: float) -> float:
        """The true pressure behind a noise-free reading (for tests that check calibration)."""
        return raw / self.counts_per_mmhg - self.zero_offset_mmhg
