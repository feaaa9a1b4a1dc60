"""The gravimetric test run as a background job, with the progress a page shows.

One test at a time; its report goes to the calibration store beside the transducer's
records. Offered from the dashboard on the simulator only, where ``emulated`` provides an
emulated pump and balance running faster than real time (never the pump that serves
injections); on real devices ``injectctl gravimetric`` runs it with the balance's port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from controller.calibration.gravimetric_record import save_report
from controller.calibration.gravimetric_run import (
    GravimetricAborted,
    GravimetricPlan,
    GravimetricReport,
    WeightSample,
    run_gravimetric,
)
from drivers.balance import Balance
from drivers.mtsics import BalanceError
from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import PumpError
from drivers.tasks import cancel_and_wait
from drivers.transport import TransportError

log = logging.getLogger(__name__)


class BenchPorts(Protocol):
    """An emulated bench: where its pump and balance are, and its (scaled) clock."""

    @property
    def pump_port(self) -> str: ...

    @property
    def balance_port(self) -> str: ...

    @property
    def clock(self) -> Any: ...


EmulatedBench = Callable[[float, float], contextlib.AbstractAsyncContextManager[BenchPorts]]
"""``(syringe diameter mm, speed)`` -> a running emulated bench, until the block ends."""


class GravimetricBench:
    """Owns the one test that may run, and what the page shows of its progress."""

    def __init__(self, directory: Path, emulated: EmulatedBench | None = None) -> None:
        self.directory = directory
        self.emulated = emulated  # the simulator's pump and balance; None on real devices
        self.task: asyncio.Task[None] | None = None
        self.progress: dict[str, Any] = {"running": False}

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self, plan: GravimetricPlan, speed: float) -> None:
        self.progress = {
            "running": True,
            "done": 0,
            "total": plan.samples,
            "plan": plan.model_dump(),
        }
        self.task = asyncio.create_task(self._run(plan, speed), name="gravimetric-bench")

    async def stop(self) -> None:
        await cancel_and_wait(self.task)

    async def _run(self, plan: GravimetricPlan, speed: float) -> None:
        try:
            report = await self._measure(plan, speed)
            await asyncio.to_thread(save_report, self.directory, report)
            self.progress.update(running=False, stamp=report.stamp, passed=report.passed)
        except asyncio.CancelledError:
            self.progress.update(running=False, error="cancelled: the server is stopping")
            raise
        except (GravimetricAborted, PumpError, BalanceError, TransportError) as exc:
            self.progress.update(running=False, error=str(exc))
        except Exception as exc:  # the owner of a background job reports, never loses, a failure
            log.exception("gravimetric bench test failed")
            self.progress.update(running=False, error=f"failed: {exc}")

    async def _measure(self, plan: GravimetricPlan, speed: float) -> GravimetricReport:
        if self.emulated is None:
            raise GravimetricAborted("no emulated bench: run injectctl gravimetric on real devices")
        async with self.emulated(plan.diameter_mm, speed) as rig:
            pump = await NE1000.open(rig.pump_port)
            try:
                balance = await Balance.open(rig.balance_port)
                try:
                    return await run_gravimetric(
                        pump, balance, plan, rig.clock, clock_speed=speed, on_progress=self._step
                    )
                finally:
                    await balance.close()
            finally:
                await pump.close()

    def _step(self, done: int, total: int, sample: WeightSample) -> None:
        self.progress.update(done=done, total=total, last=sample.model_dump())
