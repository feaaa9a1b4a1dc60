"""The injection controller: one pump, one transducer, one injection at a time.

The supervisor sits on the bridge's sample path; when it trips, ``_on_trip`` runs in
that same callback: pump STP to the OS, bridge INTERLOCK to the OS, then the record,
then (off the control path) relief of the stored pressure. During an injection both
hardware watchdogs are armed: the NE-1000's safe mode (fed by the driver's heartbeat
timer) and the bridge WATCHDOG (fed by the bridge client's PING timer), so the pump
stops by itself if this process dies or its loop hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

from controller import device_ops
from controller.config import ControllerConfig
from controller.injection import FINAL, Injection, InjectionRequest, State, StateError
from controller.procedure.admission import admit
from controller.procedure.plan import Checklist, next_sector
from controller.records import queries
from controller.records.recorder import Recorder, utc_now
from controller.safety.pressure_limit import ManagedRate
from controller.safety.supervisor import Supervisor
from controller.safety.verdict import Verdict, VerdictKind
from drivers.clock import now_s
from drivers.ne1000 import NE1000
from drivers.ne1000_link import PumpLinkLost, PumpTimeout
from drivers.ne1000_protocol import PumpAlarmRaised, PumpError, PumpReply
from drivers.tasks import cancel_and_wait
from drivers.transducer import BridgeEvent, TransducerBridge
from drivers.transducer_link import BridgeError
from firmware_bridge.messages import StatusFlag


def _drug_expired(request: InjectionRequest) -> bool:
    if request.drug_prepared_utc is None or request.drug_stability_min is None:
        return False
    checklist = Checklist(
        luer_lock_confirmed=True,
        line_primed=True,
        needle_position_confirmed=True,
        drug_prepared_utc=request.drug_prepared_utc,
        drug_stability_min=request.drug_stability_min,
    )
    return bool(checklist.missing())


class StartRefused(StateError):
    """Start is not allowed now; the message says why (the API answers 409 with it)."""


class Controller:
    def __init__(
        self,
        pump: NE1000,
        bridge: TransducerBridge,
        recorder: Recorder,
        config: ControllerConfig,
        *,
        uncalibrated_reason: str | None = None,
        supervisor_factory: Callable[..., Supervisor] = Supervisor,
    ) -> None:
        """Built by ``controller.system.build_system``. ``uncalibrated_reason``: why the
        bridge's nominal gain may serve for injections (None: a calibration is needed)."""
        self.pump, self.bridge, self.recorder, self.config = pump, bridge, recorder, config
        self.uncalibrated_reason = uncalibrated_reason
        self.session_id = uuid.uuid4().hex[:12]
        self.supervisor = supervisor_factory(config.supervisor, self._on_trip)
        self.injections: dict[str, Injection] = {}
        self.active: Injection | None = None
        self.alarm: Verdict | None = None
        self.zeroed_at_mono_s: float | None = None
        self._managed: ManagedRate | None = None  # pressure-limited mode, per fill
        self._tasks: set[asyncio.Task[None]] = set()
        self._monitor: asyncio.Task[None] | None = None
        self._remove: list[Any] = []
        self._closed = False

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.recorder.on_failure = self._on_recorder_failure
        info = {
            "config": self.config.model_dump(),
            "calibration": self.bridge.scale.source,
            "uncalibrated_reason": self.uncalibrated_reason,
        }
        await self.recorder.session(self.session_id, info)
        await device_ops.recover_interrupted(self.recorder, self.pump)
        self._remove = [
            self.bridge.add_sample_listener(self.supervisor.on_sample),
            self.bridge.add_sample_listener(self.recorder.add_sample),
            self.bridge.add_event_listener(self._on_bridge_event),
        ]
        self.pump.on_alarm = self._on_pump_alarm
        await self.pump.stop()
        status = await self.bridge.current_status()
        if StatusFlag.INTERLOCK_ASSERTED in status.flags:
            # the previous session ended with the interlock asserted (its watchdog expired)
            self.alarm = Verdict(
                VerdictKind.LINK_LOST,
                "bridge interlock found asserted at start: the previous session ended abruptly",
                now_s(),
            )
        if not self.bridge.streaming:
            await self.bridge.start_stream(1000, 1)

    async def close(self) -> None:
        """Stop any infusion first, then release everything this controller owns (once)."""
        if self._closed:
            return
        self._closed = True
        if self.active is not None and self.active.state in (State.RUNNING, State.PAUSED):
            with contextlib.suppress(PumpError, BridgeError):
                await self.stop_injection(self.active.id)
        await cancel_and_wait(self._monitor, *self._tasks)
        for remove in self._remove:
            remove()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ transducer
    async def zero_transducer(self, samples: int = 1000) -> float:
        """Zero to atmosphere (the line open to air); refused while an injection runs."""
        if self.active is not None and self.active.state in (State.RUNNING, State.PAUSED):
            raise StateError("cannot zero the transducer while an injection is running")
        zero = await device_ops.zero(self.bridge, samples)
        self.zeroed_at_mono_s = now_s()
        await self.recorder.event(None, "transducer_zeroed", {"zero_counts": zero}, now_s())
        return zero

    def assume_zeroed(self, why: str) -> None:
        """Bench and HIL use: the operator states the zero is valid (recorded)."""
        self.zeroed_at_mono_s = now_s()
        self.recorder.event(None, "zero_asserted", {"why": why}, now_s())

    # ------------------------------------------------------------ injections
    def create_injection(self, request: InjectionRequest) -> Injection:
        checked, path = admit(request, self.config.limits)
        injection = Injection(request, checked, path)
        self.injections[injection.id] = injection
        if checked.override_reason:
            injection.note("limit_overridden", reason=checked.override_reason)
        self.recorder.injection(injection.row(self.session_id))
        return injection

    async def propose_sector(self, target: str, sectors: int) -> tuple[int, int]:
        """Sequential technique: (cycle, sector) for this target, clockwise from its history."""
        rows = await self.recorder.read(
            queries.injections_in_states, ("completed", "interrupted", "stopped", "alarm")
        )
        history = []
        for row in rows:
            request = json.loads(row["request_json"])
            if request.get("target") == target and request.get("sector") and request.get("cycle"):
                history.append((int(request["cycle"]), int(request["sector"])))
        return next_sector(history, sectors)

    def why_not_startable(self, injection: Injection) -> str | None:
        zero_age = None if self.zeroed_at_mono_s is None else now_s() - self.zeroed_at_mono_s
        checks = [
            (injection.state is not State.READY, f"injection is {injection.state}"),
            (
                self.active is not None and self.active.state not in FINAL,
                "another injection is running",
            ),
            (self.alarm is not None, "an alarm is latched; acknowledge it first"),
            (zero_age is None, "transducer not zeroed"),
            (
                zero_age is not None and zero_age > self.config.zero_max_age_s,
                "transducer zero is too old",
            ),
            (
                not self.bridge.scale.calibrated and self.uncalibrated_reason is None,
                "transducer not calibrated: calibrate it (Calibration tab, or injectctl "
                "transducer calibrate) or run with --uncalibrated REASON",
            ),
            (not injection.request.checklist_confirmed, "checklist not confirmed"),
            (
                self.recorder.failure is not None,
                f"the record cannot be written: {self.recorder.failure}",
            ),
            (_drug_expired(injection.request), "drug past its stability window"),
            (not self.bridge.link_ok or not self.bridge.streaming, "transducer not streaming"),
        ]
        return next((why for failed, why in checks if failed), None)

    async def start_injection(self, injection_id: str) -> Injection:
        injection = self._get(injection_id)
        why = self.why_not_startable(injection)
        if why is not None:
            raise StartRefused(why)
        self.active = injection
        self.supervisor.over_pressure.limit_mmhg = injection.checked.pressure_limit_mmhg
        await device_ops.arm(
            self.pump, self.bridge, self.config, injection.checked.pressure_limit_mmhg
        )
        await self._run_fill(injection)
        injection.move(State.RUNNING)
        await self._record(injection, "started", fill_ml=injection.fill_ml)
        self._monitor = asyncio.create_task(
            self._watch_pump(injection), name=f"pump-watch-{injection.id}"
        )
        return injection

    async def _run_fill(self, injection: Injection) -> None:
        """Program the pump for what is left of this fill, start it, and start supervising."""
        remaining = injection.fill_ml - injection.fill_delivered_ml
        await device_ops.program_fill(self.pump, injection, remaining)
        self.recorder.trace_into(injection.id)
        self.supervisor.begin_infusion(
            now_s(),
            injection.request.rate_ml_min,
            device_ops.line_prior(injection.path),
        )
        await self._manage_rate(injection)
        await self.pump.run()
        rate_ml_s = injection.request.rate_ml_min / 60.0
        injection.fill_clock_mono_s = now_s() - injection.fill_delivered_ml / rate_ml_s

    async def _manage_rate(self, injection: Injection) -> None:
        """Pressure-limited mode: a limiter for this fill, stepped on the control path."""
        injection.rate_now_ml_min = None
        self._managed = await ManagedRate.for_fill(
            self.pump, self.supervisor, injection, self.config
        )

    async def _send_rate(self, injection: Injection) -> None:
        if self._managed is not None:
            await self._managed.send(self.pump, self.recorder, injection)

    async def pause_injection(self, injection_id: str) -> Injection:
        injection = self._get(injection_id)
        if injection.state is not State.RUNNING:
            raise StateError(
                f"injection {injection.id} is {injection.state}; only a running one pauses"
            )
        self.supervisor.end_infusion()
        await self.pump.stop()
        injection.move(State.PAUSED)
        injection.fill_delivered_ml = (await self.pump.dispensed_ml())[0]
        await self._record(injection, "paused", delivered_ml=injection.delivered_ml)
        return injection

    async def resume_injection(self, injection_id: str) -> Injection:
        injection = self._get(injection_id)
        if injection.state is not State.PAUSED:
            raise StateError(
                f"injection {injection.id} is {injection.state}; only a paused one resumes"
            )
        if self.alarm is not None:
            raise StartRefused("an alarm is latched; acknowledge it first")
        if injection.waiting_for in ("syringe_change", "needle_position"):
            injection.fill_index += 1
            injection.delivered_before_fill_ml += injection.fill_delivered_ml
            injection.fill_delivered_ml = 0.0
        injection.waiting_for = None
        await self.pump.stop()  # a second STP ends the paused program on the pump
        await self._run_fill(injection)
        injection.move(State.RUNNING)
        await self._record(injection, "resumed", fill=injection.fill_index + 1)
        return injection

    async def stop_injection(self, injection_id: str) -> Injection:
        injection = self._get(injection_id)
        if injection.state in FINAL:
            raise StateError(f"injection {injection.id} is already {injection.state}")
        self.supervisor.end_infusion()
        await self.pump.stop()
        if injection.state is not State.READY:
            injection.fill_delivered_ml = (await self.pump.dispensed_ml())[0]
        injection.move(State.STOPPED)
        await self._finish(injection, "stopped_by_operator")
        return injection

    async def acknowledge(self) -> Verdict | None:
        """Clear the latched alarm; refused (``BridgeRefused``) while the bridge sees the cause."""
        if self.alarm is None:
            return None
        await self.bridge.release_interlock()
        verdict, self.alarm = self.alarm, None
        self.supervisor.acknowledge()
        await self.recorder.acknowledge_alarms()
        await self.recorder.event(None, "alarm_acknowledged", {"kind": verdict.kind}, now_s())
        return verdict

    def _get(self, injection_id: str) -> Injection:
        try:
            return self.injections[injection_id]
        except KeyError:
            raise KeyError(f"no injection {injection_id}") from None

    # ------------------------------------------------------------ the stop path
    def _on_trip(self, verdict: Verdict) -> None:
        """Synchronous, on the control path: STP, interlock, then record. Nothing awaited."""
        device_ops.stop_now(self.pump, self.bridge)
        self.alarm = verdict
        injection = self.active
        if injection is not None and injection.state in (State.RUNNING, State.PAUSED):
            injection.alarm, injection.alarm_utc = verdict, utc_now()
            injection.move(State.ALARM)
        injection_id = injection.id if injection is not None else None
        self.recorder.alarm(
            injection_id, verdict.kind, verdict.detail, verdict.values, verdict.t_mono_s
        )
        self._spawn(self._after_trip(injection, verdict))

    async def _after_trip(self, injection: Injection | None, verdict: Verdict) -> None:
        """Off the control path: confirm the stop, relieve a blockage's pressure, record."""
        with contextlib.suppress(PumpError):
            await self.pump.stop()
        if injection is not None and injection.state is State.INTERRUPTED:
            with contextlib.suppress(PumpError):
                injection.fill_delivered_ml = (await self.pump.dispensed_ml())[0]
            await self._finish(injection, "interrupted", why=f"recording failed: {verdict.detail}")
        if injection is not None and injection.state is State.ALARM:
            if verdict.kind in ("occlusion", "over_pressure"):
                relief = await device_ops.relieve(
                    self.pump, self.bridge, self.supervisor, self.config, injection
                )
                injection.note("pressure_relief", **relief)
            with contextlib.suppress(PumpError):
                injection.fill_delivered_ml = (await self.pump.dispensed_ml())[0]
            await self._finish(injection, "alarm", alarm_kind=verdict.kind, detail=verdict.detail)

    async def _finish(self, injection: Injection, event: str, **detail: Any) -> None:
        if self._monitor is not None and self._monitor is not asyncio.current_task():
            self._monitor.cancel()
        self._monitor = None
        await device_ops.disarm(self.pump, self.bridge)
        self.recorder.trace_into(None)
        await self._record(injection, event, delivered_ml=injection.delivered_ml, **detail)

    async def _record(self, injection: Injection, event: str, **detail: Any) -> None:
        injection.note(event, **detail)
        self.recorder.event(injection.id, event, detail, now_s())
        with contextlib.suppress(sqlite3.Error):  # a failed record is handled on its own path
            await self.recorder.injection(injection.row(self.session_id))

    def _on_recorder_failure(self, why: str) -> None:
        """The record cannot be written (disk full, read-only): stop as on a lost device."""
        injection = self.active
        if injection is None or injection.state not in (State.RUNNING, State.PAUSED):
            return
        device_ops.stop_now(self.pump, self.bridge)
        self.supervisor.end_infusion()
        injection.move(State.INTERRUPTED)
        self._spawn(self._after_trip(injection, Verdict(VerdictKind.RECORDING_FAILED, why, 0.0)))

    # ------------------------------------------------------------ device events
    def _on_bridge_event(self, event: BridgeEvent) -> None:
        self.supervisor.on_bridge_event(event)

    def _on_pump_alarm(self, reply: PumpReply) -> None:
        alarm = reply.alarm
        name = f"A?{alarm.value} {alarm.name}" if alarm is not None else reply.data
        self.supervisor.on_pump_alarm(now_s(), name)

    async def _watch_pump(self, injection: Injection) -> None:
        """The pump link's task: DIS against time x rate, completion, and a pump gone quiet."""
        try:
            while injection.state in (State.RUNNING, State.PAUSED):
                await asyncio.sleep(self.config.pump_poll_s)  # the polling period of the pump link
                if injection.state is State.RUNNING:
                    await self._poll_once(injection)
        except (PumpTimeout, PumpLinkLost) as exc:
            self.supervisor.on_pump_lost(now_s(), str(exc))
        except PumpAlarmRaised as exc:
            self.supervisor.on_pump_alarm(now_s(), str(exc))

    async def _poll_once(self, injection: Injection) -> None:
        status = await self.pump.status()
        injection.fill_delivered_ml = (await self.pump.dispensed_ml())[0]
        if injection.state is not State.RUNNING:
            return
        await self._send_rate(injection)
        elapsed = now_s() - injection.fill_clock_mono_s
        expected = min(injection.fill_ml, injection.request.rate_ml_min * elapsed / 60.0)
        if self._managed is not None:
            expected = min(injection.fill_ml, self._managed.clock.expected_ml(now_s()))
        self.supervisor.on_delivery(now_s(), injection.fill_delivered_ml, expected)
        if status.moving or injection.state is not State.RUNNING:
            return
        if injection.fill_delivered_ml >= injection.fill_ml - 1e-6:
            await self._fill_done(injection)
        else:
            self.supervisor.on_pump_lost(now_s(), f"pump stopped by itself ({status.name})")

    async def _fill_done(self, injection: Injection) -> None:
        self.supervisor.end_infusion()
        if injection.last_fill:
            injection.move(State.COMPLETED)
            await self._finish(injection, "completed")
            return
        injection.move(State.PAUSED)
        # radial technique: the operator moves the needle and confirms the position (resume)
        reason = "needle_position" if injection.request.aliquots > 1 else "syringe_change"
        injection.waiting_for = reason
        await self._record(
            injection, reason, fill=injection.fill_index + 1, delivered_ml=injection.delivered_ml
        )
