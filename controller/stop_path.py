"""The stop path: from a verdict to the pump stopped, the interlock asserted, the record kept.

``on_trip`` is synchronous and runs where the verdict was raised (usually the bridge's
receive callback, on the control path): it inhibits any infusing RUN at the driver, puts
STP and INTERLOCK on their wires, latches the alarm, moves the injection to ``alarm`` and
queues the alarm's record. Nothing is awaited. Off the control path ``after_trip`` then
confirms the stop, relieves a blockage's pressure and finishes the injection's record;
whatever fails there is recorded and the injection is finished all the same. A software
fault (an exception on the control path, a background task that died) takes the same path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from controller import delivery, device_ops, relief
from controller.injection import FINAL, Injection, State
from controller.records.recorder import utc_now
from controller.safety.verdict import Verdict, VerdictKind
from drivers.clock import now_s
from drivers.ne1000_protocol import PumpError
from drivers.transducer_link import BridgeError

if TYPE_CHECKING:
    from controller.controller import Controller

log = logging.getLogger(__name__)
RELIEVED = (VerdictKind.OCCLUSION, VerdictKind.OVER_PRESSURE)
STARTING = (State.READY, State.RUNNING, State.PAUSED)


class StopPath:
    def __init__(self, controller: Controller) -> None:
        self.c = controller
        self.handling: asyncio.Task[None] | None = None  # the last after-trip task

    @property
    def busy(self) -> bool:
        """The last stop is still being handled (relief, the record)."""
        return self.handling is not None and not self.handling.done()

    # ------------------------------------------------------------ on the control path
    def on_trip(self, verdict: Verdict) -> None:
        """Synchronous: inhibit RUN, STP, interlock, latch, record. Nothing awaited."""
        c = self.c
        device_ops.stop_now(c.pump, c.bridge, f"{verdict.kind}: {verdict.detail}")
        c.alarm = verdict
        injection = self._affected()
        rate_ml_min = 0.0  # what the pump was running at when the interlock went out
        if injection is not None:
            if injection.state is State.RUNNING and not c.starting:
                rate_ml_min = injection.rate_now_ml_min or injection.request.rate_ml_min
            injection.alarm, injection.alarm_utc = verdict, utc_now()
            injection.move(
                State.INTERRUPTED if verdict.kind is VerdictKind.RECORDING_FAILED else State.ALARM
            )
        if verdict.kind is not VerdictKind.RECORDING_FAILED:
            c.recorder.alarm(
                injection.id if injection is not None else None,
                verdict.kind,
                verdict.detail,
                verdict.values,
                verdict.t_mono_s,
            )
        self.handling = c.spawn(self.after_trip(injection, verdict, rate_ml_min), "after-trip")

    def _affected(self) -> Injection | None:
        """The injection this verdict stops: the active one, if it is starting, running or
        paused. An alarm while idle belongs to no injection (not the last finished one)."""
        active = self.c.active
        if active is None or active.state in FINAL or active.state not in STARTING:
            return None
        if active.state is State.READY and not self.c.starting:
            return None
        return active

    def software_fault(self, where: str, exc: BaseException) -> None:
        """An exception where none may be. Through the supervisor (it latches); if even that
        fails, straight to the stop path."""
        log.error("software fault in %s", where, exc_info=exc)
        try:
            self.c.supervisor.on_software_fault(now_s(), where, exc)
        except Exception:
            log.exception("the supervisor failed while reporting a software fault")
            if self.c.alarm is None:
                detail = f"{where} raised {type(exc).__name__}: {exc}"
                self.on_trip(Verdict(VerdictKind.SOFTWARE_FAULT, detail, now_s()))

    # ------------------------------------------------------------ off the control path
    async def after_trip(
        self, injection: Injection | None, verdict: Verdict, rate_ml_min: float = 0.0
    ) -> None:
        """Confirm the stop, relieve a blockage, read what was delivered (estimate it if the
        pump does not answer), finish the record, whatever fails."""
        c = self.c
        notes: dict[str, Any] = {}
        try:
            await self._confirm_stop(notes)
            if injection is not None and verdict.kind in RELIEVED:
                limit = injection.checked.pressure_limit_mmhg
                notes["relief"] = await relief.relieve(
                    c.pump, c.bridge, c.supervisor, c.config, limit
                )
                injection.note("pressure_relief", **notes["relief"])
            if injection is not None:
                try:
                    await device_ops.read_delivery(c.pump, injection)
                except PumpError:
                    if rate_ml_min > 0:
                        notes["delivered"] = delivery.estimate_unread(
                            injection, rate_ml_min, verdict.t_mono_s
                        )
        except Exception as exc:  # recorded; the injection is finished all the same
            log.exception("handling the stop after %s", verdict.kind)
            notes["handling_error"] = f"{type(exc).__name__}: {exc}"
        finally:
            if injection is not None:
                await self._finish(injection, verdict, notes)

    async def _confirm_stop(self, notes: dict[str, Any]) -> None:
        c = self.c
        try:
            status = await c.pump.stop()
            notes["pump_confirmed"] = status.name
        except PumpError as exc:
            # the pump does not confirm: the interlock (asserted already) holds it, through
            # its external stop input, with no host in the loop
            notes["pump_confirmed"] = f"no: {exc}"
            with contextlib.suppress(BridgeError):
                c.bridge.assert_interlock_nowait()

    async def _finish(self, injection: Injection, verdict: Verdict, notes: dict[str, Any]) -> None:
        if injection.state is State.INTERRUPTED:
            why = f"recording failed: {verdict.detail}"
            await self.c.finish(injection, "interrupted", why=why, **notes)
        else:
            await self.c.finish(
                injection, "alarm", alarm_kind=str(verdict.kind), detail=verdict.detail, **notes
            )
