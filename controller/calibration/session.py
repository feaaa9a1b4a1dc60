"""The transducer calibration the dashboard runs for the biomedical engineer.

The same steps as ``injectctl transducer zero|calibrate`` (controller/calibration.py),
held between HTTP requests: reference points are taken one at a time while the
engineer sets the manometer, then fitted, looked at, and saved or discarded. A saved
record is put in force at once; the procedure zero (taken at the needle tip's level)
is then no longer valid, so the controller asks for a new one before the next start.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from controller.calibration.transducer import (
    SETTLE_SAMPLES,
    CalibrationError,
    CalibrationPoint,
    CalibrationRecord,
    CalibrationStore,
    StillReading,
    collect_raw,
    fit_record,
    nominal_record,
    still_reading,
    zero_record,
)
from controller.calibration.verification import (
    Certificate,
    CheckPoint,
    Tolerance,
    certify,
    check_point,
    load_certificates,
    save_certificate,
)
from drivers.transducer import TransducerBridge


class CalibrationBusy(CalibrationError):
    pass


class CalibrationSession:
    def __init__(self, bridge: TransducerBridge, store: CalibrationStore) -> None:
        assert bridge.hello is not None, "bridge not connected"
        self.bridge = bridge
        self.store = store
        self.hello = bridge.hello
        self.in_force: CalibrationRecord = nominal_record(bridge.hello)
        self.points: list[CalibrationPoint] = []
        self.fitted: CalibrationRecord | None = None
        self.checks: list[CheckPoint] = []  # a verification in progress
        self._reading = asyncio.Lock()

    async def load(self) -> CalibrationRecord:
        """Put the newest stored calibration of this bridge in force (nominal if none)."""
        latest = await asyncio.to_thread(self.store.latest, self.hello.device_id)
        if latest is not None:
            self.in_force = latest
        self.bridge.scale = self.in_force.scale()
        return self.in_force

    async def history(self) -> list[CalibrationRecord]:
        return await asyncio.to_thread(self.store.history, self.hello.device_id)

    async def take_point(self, reference_mmhg: float, samples: int) -> CalibrationPoint:
        """Average a still reading at the manometer's pressure; refused if it moves."""
        reading = await self._still(samples)
        point = CalibrationPoint(
            reference_mmhg=reference_mmhg,
            raw_mean=reading.raw_mean,
            raw_sd=reading.raw_sd,
            n=reading.n,
        )
        self.points.append(point)
        self.fitted = None
        return point

    def clear(self) -> None:
        self.points.clear()
        self.fitted = None

    def fit(self) -> CalibrationRecord:
        self.fitted = fit_record(self.hello.device_id, list(self.points), self.hello.nominal_gain)
        return self.fitted

    async def save_fitted(self) -> CalibrationRecord:
        if self.fitted is None:
            raise CalibrationError("nothing fitted to save: take the points and fit them first")
        record, self.fitted = self.fitted, None
        self.points.clear()
        return await self._put_in_force(record)

    async def zero(self, samples: int) -> CalibrationRecord:
        """Bench zero at atmosphere: a new dated record with the gain kept."""
        reading = await self._still(samples)
        return await self._put_in_force(zero_record(reading, self.in_force))

    async def check_point(
        self, reference_mmhg: float, samples: int, tolerance: Tolerance
    ) -> CheckPoint:
        """Verification: read with the calibration in force and compare with the manometer."""
        reading = await self._still(samples)
        point = check_point(reference_mmhg, reading, self.in_force, tolerance)
        self.checks.append(point)
        return point

    async def certify(self, tolerance: Tolerance) -> tuple[Certificate, Path]:
        """The verification's certificate, stored beside the calibrations (JSON and HTML)."""
        if len(self.checks) < 2:
            raise CalibrationError("a verification needs at least two reference points")
        certificate = certify(self.hello.device_id, self.in_force, tolerance, list(self.checks))
        path = await asyncio.to_thread(save_certificate, self.store.directory, certificate)
        self.checks.clear()
        return certificate, path

    async def certificates(self) -> list[Certificate]:
        return await asyncio.to_thread(
            load_certificates, self.store.directory, self.hello.device_id
        )

    def view(self) -> dict[str, Any]:
        return {
            "device_id": f"{self.hello.device_id:08x}",
            "in_force": self.in_force.model_dump(mode="json"),
            "scale_source": self.bridge.scale.source,
            "points": [p.model_dump(mode="json") for p in self.points],
            "fitted": None if self.fitted is None else self.fitted.model_dump(mode="json"),
            "checks": [p.model_dump(mode="json") for p in self.checks],
        }

    async def _still(self, samples: int) -> StillReading:
        if self._reading.locked():
            raise CalibrationBusy("a reading is already being taken")
        async with self._reading:
            wanted = SETTLE_SAMPLES + samples
            raw = await collect_raw(self.bridge, wanted, timeout_s=5 + wanted / 500)
        return still_reading(raw[SETTLE_SAMPLES:], self.in_force.gain_counts_per_mmhg)

    async def _put_in_force(self, record: CalibrationRecord) -> CalibrationRecord:
        await asyncio.to_thread(self.store.save, record)
        self.in_force = record
        self.bridge.scale = record.scale()
        return record
