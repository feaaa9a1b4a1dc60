"""The pump link's task for one injection: DIS against time x rate, completion, silence.

The NE-1000 says nothing by itself in basic mode, so it is polled. Each poll reads its
status and its dispensed volume, hands a pressure-limited rate to it, checks the volume
against what the rate should have delivered by now, and notices the end of a fill (the
pump's own volume target reached). A pump that stops answering, answers with an alarm,
answers nonsense or refuses, and any failure of this task itself, is a verdict: the task
never ends silently.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from controller import device_ops
from controller.device_ops import dis_resolution_ml
from controller.injection import Injection, State
from drivers.clock import now_s
from drivers.ne1000_link import PumpLinkLost, PumpTimeout
from drivers.ne1000_protocol import PumpAlarmRaised, PumpError

if TYPE_CHECKING:
    from controller.controller import Controller


class PumpWatch:
    def __init__(self, controller: Controller, injection: Injection) -> None:
        self.c, self.injection = controller, injection
        self.task = controller.spawn(self._run(), f"pump-watch-{injection.id}")

    async def _run(self) -> None:
        c, injection = self.c, self.injection
        supervisor = c.supervisor
        try:
            while injection.state in (State.RUNNING, State.PAUSED):
                await asyncio.sleep(c.config.pump_poll_s)  # the polling period of the pump link
                if injection.state is State.RUNNING:
                    await self._poll_once()
        except (PumpTimeout, PumpLinkLost) as exc:
            supervisor.on_pump_lost(now_s(), str(exc))
        except PumpAlarmRaised as exc:
            supervisor.on_pump_alarm(now_s(), str(exc))
        except PumpError as exc:  # malformed after retries, ?NA, ?OOR, a refused rate
            supervisor.on_pump_alarm(now_s(), f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # this task must never end in silence
            c.stop_path.software_fault("the pump watch", exc)

    async def _poll_once(self) -> None:
        c, injection = self.c, self.injection
        status = await c.pump.status()
        await device_ops.read_delivery(c.pump, injection)
        if injection.state is not State.RUNNING:
            return
        if c.managed is not None:
            await c.managed.send(c.pump, c.recorder, injection)
        c.supervisor.on_delivery(now_s(), injection.fill_delivered_ml, self._expected_ml())
        if status.moving or injection.state is not State.RUNNING:
            return
        target_ml = injection.fill_target_ml
        if injection.fill_delivered_ml >= target_ml - dis_resolution_ml(target_ml):
            await self._fill_done()
        else:
            c.supervisor.on_pump_lost(now_s(), f"pump stopped by itself ({status.name})")

    def _expected_ml(self) -> float:
        injection, managed = self.injection, self.c.managed
        if managed is not None:
            return min(injection.fill_ml, managed.clock.expected_ml(now_s()))
        elapsed = now_s() - injection.fill_clock_mono_s
        return min(injection.fill_ml, injection.request.rate_ml_min * elapsed / 60.0)

    async def _fill_done(self) -> None:
        c, injection = self.c, self.injection
        c.supervisor.end_infusion()
        if injection.last_fill:
            injection.move(State.COMPLETED)
            await c.finish(injection, "completed")
            return
        injection.move(State.PAUSED)
        # radial technique: the operator moves the needle and confirms the position (resume)
        reason = "needle_position" if injection.request.aliquots > 1 else "syringe_change"
        injection.waiting_for = reason
        await c.record(
            injection, reason, fill=injection.fill_index + 1, delivered_ml=injection.delivered_ml
        )
