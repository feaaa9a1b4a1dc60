"""The gravimetric pump accuracy test: the pump infuses into a beaker on a balance.

Set-up (IEC 60601-2-24 practice): the syringe and line primed, the needle tip
under the oil layer of a beaker on an analytical balance, the balance zeroed on
that load. The test then runs the pump at the set rate, weighs every
``interval_s`` for ``duration_min`` and computes the flow error and the trumpet
curve (:mod:`controller.calibration.gravimetry`). The pump is always stopped at the end,
whatever ended the test; its VOL is set a little above the planned volume so a
pump left alone by a dead host still stops by itself, and in real time the
pump's safe mode is armed as in an injection.

``clock`` is the test's time base: real seconds on the bench, or the simulator's
scaled clock, which also drives the emulated pump and balance, so that a
two-hour test runs in a minute with the same code and the same bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field, model_validator

from controller.calibration.gravimetry import (
    IEC_ANALYSIS_START_MIN,
    IEC_DURATION_MIN,
    IEC_INTERVAL_S,
    IEC_WINDOWS_MIN,
    analyse,
)
from controller.procedure.catalog import CatalogError, load_syringes
from drivers.balance import Balance
from drivers.mtsics import BalanceError
from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import Direction, PumpError

log = logging.getLogger(__name__)

WATER_DENSITY_G_ML = 0.9982
VOLUME_MARGIN = 1.05  # the pump's own VOL stop, above what the test needs
SAFE_TIMEOUT_S = 5
MAX_UNSTABLE_FRACTION = 0.1


class Clock(Protocol):
    def now_s(self) -> float: ...

    async def sleep_until(self, t_s: float) -> None: ...


class RealClock:
    """Monotonic seconds: the bench's time base."""

    def now_s(self) -> float:
        return time.monotonic()

    async def sleep_until(self, t_s: float) -> None:
        delay_s = t_s - self.now_s()
        if delay_s > 0:
            await asyncio.sleep(delay_s)


class GravimetricAborted(Exception):
    """The test could not go on; the pump has been stopped."""


class GravimetricPlan(BaseModel):
    rate_ml_h: float = Field(gt=0, le=500)
    diameter_mm: float = Field(gt=0, le=40)
    capacity_ml: float = Field(gt=0, le=60)
    syringe: str = ""
    duration_min: float = Field(default=IEC_DURATION_MIN, ge=4, le=240)
    interval_s: float = Field(default=IEC_INTERVAL_S, ge=5, le=120)
    analysis_start_min: float | None = Field(default=None, ge=0)
    density_g_ml: float = Field(default=WATER_DENSITY_G_ML, gt=0.5, lt=2)
    tolerance_pct: float = Field(default=2.0, gt=0, le=20)

    @model_validator(mode="after")
    def _fits(self) -> GravimetricPlan:
        needed_ml = self.rate_ml_h * self.duration_min / 60.0
        if needed_ml > self.capacity_ml:
            raise ValueError(
                f"rate_ml_h: {self.rate_ml_h:g} mL/h for {self.duration_min:g} min needs "
                f"{needed_ml:.2f} mL, more than the {self.capacity_ml:g} mL syringe holds"
            )
        if self.analysis_start_s >= self.duration_min * 60 - 2 * self.interval_s:
            raise ValueError("analysis_start_min: leaves no analysis period before the end")
        return self

    @classmethod
    def for_syringe(cls, syringe_id: str, **settings: float) -> GravimetricPlan:
        """The plan for a catalog syringe; ``CatalogError`` names the known ones."""
        syringes = load_syringes()
        if syringe_id not in syringes:
            raise CatalogError(f"unknown syringe {syringe_id!r}; known: {', '.join(syringes)}")
        syringe = syringes[syringe_id]
        return cls(
            diameter_mm=syringe.inner_diameter_mm,
            capacity_ml=syringe.nominal_volume_ml,
            syringe=syringe.id,
            **settings,
        )

    @property
    def analysis_start_s(self) -> float:
        """IEC: the second hour of two; for shorter runs, the second half."""
        if self.analysis_start_min is not None:
            return self.analysis_start_min * 60.0
        if self.duration_min == IEC_DURATION_MIN:
            return IEC_ANALYSIS_START_MIN * 60.0
        return self.duration_min * 30.0

    @property
    def samples(self) -> int:
        return int(self.duration_min * 60 // self.interval_s)

    @property
    def iec_conforming(self) -> bool:
        return (
            self.duration_min == IEC_DURATION_MIN
            and self.interval_s == IEC_INTERVAL_S
            and self.analysis_start_s == IEC_ANALYSIS_START_MIN * 60.0
        )


class WeightSample(BaseModel):
    t_s: float
    net_g: float
    stable: bool
    pump_infused_ml: float


class TrumpetRow(BaseModel):
    window_min: float
    max_error_pct: float
    min_error_pct: float
    windows: int


class GravimetricReport(BaseModel):
    created_utc: datetime
    pump_id: str
    pump_firmware: str
    balance_model: str
    balance_serial: str
    plan: GravimetricPlan
    iec_conforming: bool
    clock_speed: float
    samples: list[WeightSample]
    flow_ml_h: list[float]
    mean_flow_ml_h: float
    mean_error_pct: float
    trumpet: list[TrumpetRow]
    gravimetric_ml: float
    pump_infused_ml: float
    unstable_readings: int
    passed: bool
    notes: list[str]

    @property
    def stamp(self) -> str:
        return self.created_utc.strftime("%Y%m%dT%H%M%S%fZ")


Progress = Callable[[int, int, WeightSample], None]


def pump_id(pump: NE1000) -> str:
    """Folder name of the pump's calibration record: model and bus address."""
    model = pump.identity.model if pump.identity else 0
    return f"ne{model}-addr{pump.link.address:02d}"


async def run_gravimetric(
    pump: NE1000,
    balance: Balance,
    plan: GravimetricPlan,
    clock: Clock,
    *,
    clock_speed: float = 1.0,
    on_progress: Progress | None = None,
) -> GravimetricReport:
    """Run the test; the pump is stopped on every way out."""
    await _program_pump(pump, plan, safe_mode=clock_speed == 1.0)
    samples: list[WeightSample] = []
    try:
        await balance.zero()
        # the weight at the start: nothing flows before RUN, so it is the weight at t = 0
        before_run = await _sample(pump, balance, clock, clock.now_s())
        samples.append(before_run.model_copy(update={"t_s": 0.0}))
        await pump.run()
        start_s = clock.now_s()
        for i in range(1, plan.samples + 1):
            await clock.sleep_until(start_s + i * plan.interval_s)
            sample = await _sample(pump, balance, clock, start_s)
            samples.append(sample)
            if on_progress is not None:
                on_progress(i, plan.samples, sample)
            if not (await pump.status()).moving:
                raise GravimetricAborted(f"the pump stopped by itself at {sample.t_s / 60:.1f} min")
    except (BalanceError, PumpError) as exc:
        raise GravimetricAborted(f"test aborted: {exc}") from exc
    finally:
        await _stop_pump(pump, safe_mode=clock_speed == 1.0)
    return build_report(pump, balance, plan, samples, clock_speed)


async def _program_pump(pump: NE1000, plan: GravimetricPlan, *, safe_mode: bool) -> None:
    await pump.stop()
    await pump.set_diameter_mm(plan.diameter_mm)
    await pump.set_direction(Direction.INFUSE)
    await pump.set_rate_ml_min(plan.rate_ml_h / 60.0)
    needed_ml = plan.rate_ml_h * plan.duration_min / 60.0
    await pump.set_volume_ml(min(needed_ml * VOLUME_MARGIN, plan.capacity_ml))
    await pump.clear_dispensed(Direction.INFUSE)
    if safe_mode:
        await pump.enable_safe_mode(SAFE_TIMEOUT_S)


async def _stop_pump(pump: NE1000, *, safe_mode: bool) -> None:
    """STP (on the wire at once, even with a command in flight); safe mode is left only
    once the pump confirmed it, so an unconfirmed stop still ends in the pump's timeout."""
    if safe_mode:
        if not await pump.stop_then_disable_safe_mode():
            log.error("gravimetric test: the pump did not confirm STP; safe mode left armed")
        return
    try:
        await pump.stop()
    except (PumpError, TimeoutError) as exc:
        log.error("gravimetric test: the pump did not confirm STP: %s", exc)


async def _sample(pump: NE1000, balance: Balance, clock: Clock, start_s: float) -> WeightSample:
    before_s = clock.now_s()
    weight = await balance.weigh_now()
    after_s = clock.now_s()
    infused_ml, _ = await pump.dispensed_ml()
    t_s = (before_s + after_s) / 2 - start_s
    return WeightSample(
        t_s=max(t_s, 0.0), net_g=weight.grams, stable=weight.stable, pump_infused_ml=infused_ml
    )


def build_report(
    pump: NE1000,
    balance: Balance,
    plan: GravimetricPlan,
    samples: list[WeightSample],
    clock_speed: float,
) -> GravimetricReport:
    t_s = np.array([s.t_s for s in samples])
    net_g = np.array([s.net_g for s in samples])
    analysis = analyse(
        t_s,
        net_g,
        rate_ml_h=plan.rate_ml_h,
        density_g_ml=plan.density_g_ml,
        interval_s=plan.interval_s,
        analysis_start_s=plan.analysis_start_s,
        windows_min=IEC_WINDOWS_MIN,
    )
    unstable = sum(not s.stable for s in samples)
    notes = _notes(plan, unstable, len(samples))
    passed = abs(analysis.mean_error_pct) <= plan.tolerance_pct and unstable <= (
        MAX_UNSTABLE_FRACTION * len(samples)
    )
    identity = pump.identity
    firmware = f"{identity.firmware[0]}.{identity.firmware[1]}" if identity else "?"
    return GravimetricReport(
        created_utc=datetime.now(UTC),
        pump_id=pump_id(pump),
        pump_firmware=firmware,
        balance_model=balance.identity.model if balance.identity else "?",
        balance_serial=balance.identity.serial_number if balance.identity else "?",
        plan=plan,
        iec_conforming=plan.iec_conforming,
        clock_speed=clock_speed,
        samples=samples,
        flow_ml_h=[float(q) for q in analysis.flow_ml_h],
        mean_flow_ml_h=analysis.mean_flow_ml_h,
        mean_error_pct=analysis.mean_error_pct,
        trumpet=[
            TrumpetRow(
                window_min=p.window_min,
                max_error_pct=p.max_error_pct,
                min_error_pct=p.min_error_pct,
                windows=p.windows,
            )
            for p in analysis.trumpet
        ],
        gravimetric_ml=float(net_g[-1] / plan.density_g_ml),
        pump_infused_ml=samples[-1].pump_infused_ml,
        unstable_readings=unstable,
        passed=passed,
        notes=notes,
    )


def _notes(plan: GravimetricPlan, unstable: int, count: int) -> list[str]:
    notes = []
    if not plan.iec_conforming:
        notes.append(
            f"not the IEC 60601-2-24 protocol (120 min, 30 s, second hour): "
            f"{plan.duration_min:g} min, {plan.interval_s:g} s, analysis from "
            f"{plan.analysis_start_s / 60:g} min"
        )
    if unstable:
        notes.append(f"{unstable} of {count} readings were not stable (draught, vibration?)")
    if unstable > MAX_UNSTABLE_FRACTION * count:
        notes.append("too many unstable readings: the result is not trusted")
    return notes
