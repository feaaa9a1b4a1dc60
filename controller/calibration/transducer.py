"""Transducer calibration for the biomedical engineer: zero, span and multi-point.

A calibration is a dated record (JSON, one file per calibration, never edited)
that turns ADC counts into mmHg: ``pressure = (raw - zero_counts) / gain``.
Zeroing to atmosphere replaces the zero and keeps the gain; a span or
multi-point calibration against a reference manometer fits both by least
squares and reports how far the transducer is from a straight line.

Readings are only accepted while the signal is still: a pressure that moves
during an average gives a wrong point without any sign of it.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from drivers.transducer import Scale, TransducerBridge
from firmware_bridge.messages import Hello

MAX_MEAN_UNCERTAINTY_MMHG = 0.1  # standard error of a still reading's mean
MAX_NOISE_MMHG = 10.0  # rms beyond this is a fault, not noise to average out
MAX_DRIFT_MMHG = 0.5  # first quarter against last quarter of the window (beyond noise)
MIN_SAMPLES = 40
BLOCKS = 10
MAX_ZERO_OFFSET_MMHG = 50.0  # a transducer this far off at atmosphere is not open to air
MAX_GAIN_ERROR = 0.20  # a fitted gain this far from nominal is a unit or wiring mistake
MIN_SPAN_MMHG = 50.0
# Samples dropped at the start of a reading: they were already on their way from the bridge
# (or the line was still settling) when the operator said the reference was set.
SETTLE_SAMPLES = 100

RawArray = npt.NDArray[np.float64]
Method = Literal["nominal", "zero", "span", "multipoint"]


class CalibrationError(Exception):
    """A calibration step that cannot be accepted, with the reason in words."""


class NotStill(CalibrationError):
    pass


class CalibrationPoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reference_mmhg: float
    raw_mean: float
    raw_sd: float
    n: int


class CalibrationRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: int
    method: Method
    created_utc: datetime
    zero_counts: float = Field(allow_inf_nan=False)
    gain_counts_per_mmhg: float = Field(gt=0, allow_inf_nan=False)
    points: list[CalibrationPoint] = []
    residuals_mmhg: list[float] = []
    nonlinearity_pct_span: float | None = None
    note: str = ""

    def scale(self) -> Scale:
        when = self.created_utc.strftime("%Y-%m-%d %H:%M UTC")
        return Scale(
            self.zero_counts,
            self.gain_counts_per_mmhg,
            f"{self.method} of {when}",
            calibrated=self.method != "nominal",
        )


@dataclass(frozen=True)
class StillReading:
    raw_mean: float
    raw_sd: float
    sd_mmhg: float
    drift_mmhg: float
    n: int


def _now() -> datetime:
    return datetime.now(UTC)


def nominal_record(hello: Hello) -> CalibrationRecord:
    return CalibrationRecord(
        device_id=hello.device_id,
        method="nominal",
        created_utc=_now(),
        zero_counts=float(hello.nominal_zero),
        gain_counts_per_mmhg=hello.nominal_gain,
        note="HELLO's nominal zero and gain: not calibrated",
    )


def still_reading(
    raw: RawArray,
    gain_counts_per_mmhg: float,
    max_uncertainty_mmhg: float = MAX_MEAN_UNCERTAINTY_MMHG,
    max_drift_mmhg: float = MAX_DRIFT_MMHG,
) -> StillReading:
    """Mean of a window of raw counts, refused (``NotStill``) if the mean is uncertain or
    the reading moved while it was taken.

    White noise does not make a mean uncertain: n samples of rms noise s give the mean to
    s / sqrt(n), so a noisy transducer is accepted once enough samples are averaged. What
    does is movement (a line still venting, a manometer still being set): the mean of ten
    consecutive blocks must agree within what their noise allows, and the first and last
    quarters must not differ by more than ``max_drift_mmhg`` beyond that noise."""
    n = int(raw.size)
    if n < MIN_SAMPLES:
        raise NotStill(f"only {n} samples; at least {MIN_SAMPLES} are needed")
    sd_mmhg = float(np.std(raw)) / gain_counts_per_mmhg
    if sd_mmhg > MAX_NOISE_MMHG:
        raise NotStill(
            f"noise {sd_mmhg:.1f} mmHg rms is beyond any working transducer's "
            f"({MAX_NOISE_MMHG:g}): check the cable and the transducer, then try again"
        )
    blocks = np.array_split(raw, BLOCKS)
    block_means = np.array([b.mean() for b in blocks]) / gain_counts_per_mmhg
    uncertainty = max(sd_mmhg / np.sqrt(n), float(np.std(block_means)) / np.sqrt(BLOCKS))
    if uncertainty > max_uncertainty_mmhg:
        needed = int(np.ceil(n * (uncertainty / max_uncertainty_mmhg) ** 2))
        raise NotStill(
            f"the mean is uncertain to {uncertainty:.2f} mmHg (limit {max_uncertainty_mmhg:g}): "
            f"if the line is still, take more samples (about {needed}); if it is moving, "
            "wait until it has settled"
        )
    quarter = n // 4
    drift = float(np.mean(raw[-quarter:]) - np.mean(raw[:quarter])) / gain_counts_per_mmhg
    allowed = max(max_drift_mmhg, 4.0 * sd_mmhg * np.sqrt(2.0 / quarter))
    if abs(drift) > allowed:
        raise NotStill(
            f"signal not still: drifted {drift:+.2f} mmHg while it was read (limit "
            f"{allowed:.2f}): wait until the line has vented or the reference has settled, "
            "then read again"
        )
    return StillReading(float(np.mean(raw)), float(np.std(raw)), sd_mmhg, drift, n)


def zero_record(reading: StillReading, base: CalibrationRecord) -> CalibrationRecord:
    """New zero at atmosphere, keeping the gain of ``base``."""
    shift_mmhg = (reading.raw_mean - base.zero_counts) / base.gain_counts_per_mmhg
    if base.method != "nominal" and abs(shift_mmhg) > MAX_ZERO_OFFSET_MMHG:
        raise CalibrationError(
            f"zero moved {shift_mmhg:+.1f} mmHg since the last calibration: "
            "is the transducer open to air?"
        )
    nominal_offset = reading.raw_mean / base.gain_counts_per_mmhg
    if base.method == "nominal" and abs(nominal_offset) > MAX_ZERO_OFFSET_MMHG:
        raise CalibrationError(
            f"zero offset {nominal_offset:+.1f} mmHg is beyond +/-{MAX_ZERO_OFFSET_MMHG:.0f}: "
            "is the transducer open to air?"
        )
    point = CalibrationPoint(
        reference_mmhg=0.0, raw_mean=reading.raw_mean, raw_sd=reading.raw_sd, n=reading.n
    )
    return base.model_copy(
        update={
            "method": "zero" if base.method in ("nominal", "zero") else base.method,
            "created_utc": _now(),
            "zero_counts": reading.raw_mean,
            "points": [point] if base.method in ("nominal", "zero") else base.points,
            "note": f"zeroed to atmosphere ({shift_mmhg:+.2f} mmHg from the previous zero)",
        }
    )


def fit_record(
    device_id: int, points: list[CalibrationPoint], nominal_gain: float
) -> CalibrationRecord:
    """Least-squares line through (reference mmHg, raw counts); span for 2 points."""
    if len(points) < 2:
        raise CalibrationError("a calibration needs at least two reference points")
    ref = np.array([p.reference_mmhg for p in points])
    raw = np.array([p.raw_mean for p in points])
    span = float(ref.max() - ref.min())
    if span < MIN_SPAN_MMHG:
        raise CalibrationError(f"reference points span {span:.0f} mmHg; at least 50 are needed")
    design = np.column_stack([ref, np.ones_like(ref)])
    (gain, zero), *_ = np.linalg.lstsq(design, raw, rcond=None)
    if abs(gain / nominal_gain - 1.0) > MAX_GAIN_ERROR:
        raise CalibrationError(
            f"fitted gain {gain:.1f} counts/mmHg is {100 * (gain / nominal_gain - 1):+.0f} % "
            "from nominal: check the manometer's units and the transducer wiring"
        )
    residuals = (raw - (zero + gain * ref)) / gain
    return CalibrationRecord(
        device_id=device_id,
        method="span" if len(points) == 2 else "multipoint",
        created_utc=_now(),
        zero_counts=float(zero),
        gain_counts_per_mmhg=float(gain),
        points=points,
        residuals_mmhg=[round(float(r), 4) for r in residuals],
        nonlinearity_pct_span=round(100.0 * float(np.max(np.abs(residuals))) / span, 4),
    )


async def collect_raw(bridge: TransducerBridge, n: int, timeout_s: float) -> RawArray:
    """The next ``n`` raw samples from a streaming bridge."""
    buffer = np.empty(n, dtype=np.float64)
    count = 0
    full = asyncio.Event()

    def take(index: int, t_s: float, pressure: float, raw: int) -> None:
        nonlocal count
        if count < n:
            buffer[count] = raw
            count += 1
            if count == n:
                full.set()

    remove = bridge.add_sample_listener(take)
    try:
        async with asyncio.timeout(timeout_s):
            await full.wait()
    except TimeoutError:
        raise CalibrationError(
            f"only {count} of {n} samples arrived in {timeout_s:.1f} s"
        ) from None
    finally:
        remove()
    return buffer


def default_store_dir() -> Path:
    if "INJECTCTL_DATA_DIR" in os.environ:
        return Path(os.environ["INJECTCTL_DATA_DIR"]) / "calibrations"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "injectctl" / "calibrations"


class CalibrationStore:
    """One JSON file per calibration under ``<dir>/<device id>/``; the newest is in force."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, record: CalibrationRecord) -> Path:
        folder = self.directory / f"{record.device_id:08x}"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = record.created_utc.strftime("%Y%m%dT%H%M%SZ")
        path = folder / f"{stamp}-{record.method}.json"
        serial = 1
        while path.exists():
            serial += 1
            path = folder / f"{stamp}-{record.method}-{serial}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(record.model_dump_json(indent=2) + "\n")
        tmp.replace(path)
        return path

    def history(self, device_id: int) -> list[CalibrationRecord]:
        folder = self.directory / f"{device_id:08x}"
        if not folder.is_dir():
            return []
        records = [
            CalibrationRecord.model_validate_json(p.read_text()) for p in folder.glob("*.json")
        ]
        return sorted(records, key=lambda r: r.created_utc)

    def latest(self, device_id: int) -> CalibrationRecord | None:
        history = self.history(device_id)
        return history[-1] if history else None
