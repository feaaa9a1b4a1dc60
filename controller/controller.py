"""The injection controller: one pump, one transducer, one injection at a time.

The supervisor sits on the bridge's sample path; a verdict runs the stop path
(``stop_path.py``) in that same callback. During an injection both hardware watchdogs are
armed: the NE-1000's safe mode (fed by the driver's heartbeat timer) and the bridge
WATCHDOG (fed by the bridge client's PING timer), so the pump stops by itself if this
process dies or its loop hangs.

Every await between a check and a pump command is followed by a check of the latch
(``_unlatched``), and the driver itself refuses an infusing RUN once the stop path has run
(``NE1000.inhibit_run``), so no RUN goes out after an alarm whatever was in flight. A start
or resume that fails half-way is itself a fault, handled by the stop path.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from controller import delivery, device_ops
from controller.config import ControllerConfig
from controller.injection import FINAL, Injection, InjectionRequest, State, StateError
from controller.managed_rate import ManagedRate
from controller.procedure.admission import admit
from controller.procedure.plan import next_sector
from controller.pump_watch import PumpWatch
from controller.records import queries
from controller.records.actors import controller_context
from controller.records.recorder import Recorder
from controller.recovery import recover_interrupted
from controller.safety.supervisor import Supervisor
from controller.safety.timebase import SAMPLE_RATE_HZ
from controller.safety.verdict import Verdict, VerdictKind
from controller.start_checks import alarm_latched, why_not_startable
from controller.stop_path import StopPath
from drivers.clock import now_s
from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import PumpError, PumpReply
from drivers.tasks import cancel_and_wait
from drivers.transducer import BridgeEvent, BridgeEventKind, TransducerBridge
from drivers.transducer_link import BridgeError
from firmware_bridge.messages import StatusFlag

T = TypeVar("T")
RECORDED_BRIDGE_EVENTS = (
    BridgeEventKind.SAMPLES_LOST,
    BridgeEventKind.LINK_LOST,
    BridgeEventKind.LINK_RESTORED,
    BridgeEventKind.REBOOTED,
)
SAMPLES_LOST_EVERY_S = 1.0  # at most one samples_lost record a second (with the total)


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
        self.stop_path = StopPath(self)
        self.supervisor = supervisor_factory(config.supervisor, self.stop_path.on_trip)
        self.injections: dict[str, Injection] = {}
        self.active: Injection | None = None
        self.alarm: Verdict | None = None
        self.zeroed_at_mono_s: float | None = None
        self.starting = False  # a start or resume is between its checks and its RUN
        self.managed: ManagedRate | None = None  # pressure-limited mode, per fill
        self._watches: dict[str, PumpWatch] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._remove: list[Callable[[], None]] = []
        self._closed = False
        self._lost_samples = 0
        self._lost_recorded_s = -SAMPLES_LOST_EVERY_S

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.recorder.on_failure = self._on_recorder_failure
        info = {
            "config": self.config.model_dump(mode="json"),  # secrets come out as ****
            "calibration": self.bridge.scale.source,
            "uncalibrated_reason": self.uncalibrated_reason,
        }
        await self.recorder.session(self.session_id, info)
        await recover_interrupted(self.recorder, self.pump)
        self._remove = [
            self.bridge.add_sample_listener(self.supervisor.on_sample),
            self.bridge.add_sample_listener(self.recorder.add_sample),
            self.bridge.add_event_listener(self._on_bridge_event),
        ]
        self.bridge.on_listener_error = self._on_listener_error
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
            await self.bridge.start_stream(SAMPLE_RATE_HZ, 1)

    async def close(self) -> None:
        """Stop any infusion first, then release everything this controller owns (once)."""
        if self._closed:
            return
        self._closed = True
        if self.active is not None and self.active.state in (State.RUNNING, State.PAUSED):
            with contextlib.suppress(PumpError, BridgeError, StateError):
                await self.stop_injection(self.active.id)
        await cancel_and_wait(*(w.task for w in self._watches.values()), *self._tasks)
        for remove in self._remove:
            remove()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """A background task this controller owns: awaited at close; if it dies of an
        exception, that is a software fault (an alarm), never silence. It acts as the
        controller, whoever's request started it (``records.actors``)."""
        task = asyncio.create_task(coro, name=name, context=controller_context())
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def owned_tasks(self) -> list[asyncio.Task[Any]]:
        """The background tasks alive now (one that ended has left the set, and if it ended
        by an exception a software_fault is latched): for tests and /health."""
        return list(self._tasks)

    def watch_of(self, injection_id: str) -> asyncio.Task[None] | None:
        """The pump watch task of a running injection, if it has one."""
        watch = self._watches.get(injection_id)
        return watch.task if watch is not None else None

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.stop_path.software_fault(f"task {task.get_name()}", task.exception())  # type: ignore[arg-type]

    # ------------------------------------------------------------ transducer
    async def zero_transducer(self, samples: int = 1000) -> float:
        """Zero to atmosphere (the line open to air); refused while an injection runs."""
        if self.active is not None and self.active.state in (State.RUNNING, State.PAUSED):
            raise StateError("cannot zero the transducer while an injection is running")
        zero = await device_ops.zero(self.bridge, samples)
        self.zeroed_at_mono_s = now_s()
        self.supervisor.rest.clear()  # what it saw was vented, and on the old zero
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
            request = InjectionRequest.model_validate_json(row["request_json"])
            if request.target == target and request.sector and request.cycle:
                history.append((request.cycle, request.sector))
        return next_sector(history, sectors)

    def why_not_startable(self, injection: Injection) -> str | None:
        return why_not_startable(self, injection)

    async def start_injection(self, injection_id: str) -> Injection:
        injection = self._get(injection_id)
        await delivery.confirm_last(self)  # the last one's count, before this start clears it
        why = self.why_not_startable(injection)
        if why is not None:
            raise StartRefused(why)
        self.active = injection
        self.supervisor.over_pressure.limit_mmhg = injection.checked.pressure_limit_mmhg
        self.pump.release_run()  # no alarm is latched (checked above)
        await self._begun(injection, "start", first_fill=True)
        self._watches[injection.id] = PumpWatch(self, injection)
        return injection

    async def resume_injection(self, injection_id: str) -> Injection:
        injection = self._get(injection_id)
        if injection.state is not State.PAUSED:
            raise StateError(
                f"injection {injection.id} is {injection.state}; only a paused one resumes"
            )
        if self.alarm is not None:
            raise StartRefused(alarm_latched(self.alarm))
        if injection.waiting_for in ("syringe_change", "needle_position"):
            injection.fill_index += 1
            injection.delivered_before_fill_ml += injection.fill_delivered_ml
            injection.fill_delivered_ml = 0.0
        injection.waiting_for = None
        await self._begun(injection, "resume", first_fill=False)
        return injection

    async def _begun(self, injection: Injection, action: str, *, first_fill: bool) -> None:
        """Arm (a start), program and run the fill; a failure half-way is a fault."""
        self.starting = True
        try:
            if first_fill:
                await self._unlatched(
                    device_ops.arm(
                        self.pump, self.bridge, self.config, injection.checked.pressure_limit_mmhg
                    )
                )
            else:
                await self._unlatched(self.pump.stop())  # a second STP ends the paused program
            await self._run_fill(injection, first_fill=first_fill)
        except StartRefused:
            raise
        except (PumpError, BridgeError, StateError, ValueError) as exc:
            self.supervisor.trip(Verdict(VerdictKind.PUMP_FAULT, f"{action}: {exc}", now_s()))
            raise StartRefused(f"the {action} failed and the pump was stopped: {exc}") from exc
        finally:
            self.starting = False
        injection.move(State.RUNNING)
        await self.record(
            injection,
            f"{action}ed" if action == "start" else "resumed",
            fill=injection.fill_index + 1,
        )

    async def _unlatched(self, step: Coroutine[Any, Any, T]) -> T:
        """Await one step of a start; if an alarm latched meanwhile, go no further."""
        result = await step
        if self.alarm is not None:
            raise StartRefused(
                f"an alarm latched during the start ({self.alarm.kind}: {self.alarm.detail})"
            )
        return result

    async def _run_fill(self, injection: Injection, *, first_fill: bool) -> None:
        """Program the pump for what is left of this fill, start supervising, RUN."""
        remaining = injection.fill_ml - injection.fill_delivered_ml
        accepted = await self._unlatched(device_ops.program_fill(self.pump, injection, remaining))
        injection.fill_target_ml = injection.fill_delivered_ml + accepted
        self.recorder.trace_into(injection.id)
        fresh = first_fill and injection.delivered_ml == 0.0
        prior = device_ops.line_prior(injection.path)
        if not self.supervisor.begin_infusion(
            now_s(),
            injection.request.rate_ml_min,
            prior,
            first_fill=fresh,
            fill_ml=remaining,
            injected_ml=injection.delivered_ml,
        ):
            raise StartRefused(alarm_latched(self.alarm))
        injection.rate_now_ml_min = None
        self.managed = await self._unlatched(
            ManagedRate.for_fill(self.pump, self.supervisor, injection, self.config)
        )
        await self._unlatched(self.pump.run())  # the driver refuses it once the stop path ran
        rate_ml_s = injection.request.rate_ml_min / 60.0
        injection.fill_clock_mono_s = now_s() - injection.fill_delivered_ml / rate_ml_s

    async def pause_injection(self, injection_id: str) -> Injection:
        injection = self._get(injection_id)
        if injection.state is not State.RUNNING:
            raise StateError(
                f"injection {injection.id} is {injection.state}; only a running one pauses"
            )
        self.supervisor.end_infusion()  # the pump is being stopped: its fall is no leak
        await self._stop_pump_or_trip("pause")
        if injection.state is not State.RUNNING:
            return injection  # the stop path took it
        injection.move(State.PAUSED)
        with contextlib.suppress(PumpError):
            await device_ops.read_delivery(self.pump, injection)
        await self.record(injection, "paused", delivered_ml=injection.delivered_ml)
        return injection

    async def stop_injection(self, injection_id: str) -> Injection:
        """STOP always ends with the pump stopped: STP, and if the pump does not confirm
        it, the stop path (interlock, alarm)."""
        injection = self._get(injection_id)
        if injection.state in FINAL:
            raise StateError(f"injection {injection.id} is already {injection.state}")
        if injection.state is State.READY:
            injection.move(State.STOPPED)
            await self.record(injection, "stopped_by_operator")
            return injection
        self.supervisor.end_infusion()  # the pump is being stopped: its fall is no leak
        await self._stop_pump_or_trip("stop")
        if injection.state in FINAL:
            return injection  # the stop path took it (the pump did not confirm)
        self.supervisor.end_injection()
        with contextlib.suppress(PumpError):
            await device_ops.read_delivery(self.pump, injection)
        injection.move(State.STOPPED)
        await self.finish(injection, "stopped_by_operator")
        return injection

    async def _stop_pump_or_trip(self, why: str) -> None:
        try:
            await self.pump.stop()
        except PumpError as exc:
            detail = f"{why}: the pump did not confirm STP ({exc}); interlock asserted"
            self.supervisor.trip(Verdict(VerdictKind.LINK_LOST, detail, now_s()))

    async def acknowledge(self) -> Verdict | None:
        """Clear the latched alarm; refused (``BridgeRefused``) while the bridge sees the
        cause, and while the last stop is still being handled (relief, the record)."""
        await delivery.confirm_last(self)  # the pump answers again: its count, first
        if self.alarm is None:
            return None
        if self.stop_path.busy:
            raise StateError("the stop is still being handled (pressure relief): try again")
        await self.bridge.release_interlock()
        verdict, self.alarm = self.alarm, None
        self.supervisor.acknowledge()
        self.pump.release_run()
        await self.recorder.acknowledge_alarms()
        await self.recorder.event(None, "alarm_acknowledged", {"kind": verdict.kind}, now_s())
        return verdict

    def live_rows(self) -> list[dict[str, Any]]:
        """This session's injections as the record will hold them (ahead of the record)."""
        return [i.row(self.session_id) for i in self.injections.values()]

    def _get(self, injection_id: str) -> Injection:
        try:
            return self.injections[injection_id]
        except KeyError:
            raise KeyError(f"no injection {injection_id}") from None

    # ------------------------------------------------------------ ending and records
    async def finish(self, injection: Injection, event: str, **detail: Any) -> None:
        """An injection's end: its own pump watch ended, the watchdogs disarmed if nothing
        else runs, its trace closed, its record written."""
        watch = self._watches.pop(injection.id, None)
        if watch is not None and watch.task is not asyncio.current_task():
            await cancel_and_wait(watch.task)
        if self.active is injection:
            self.supervisor.end_injection()
            await device_ops.disarm(self.pump, self.bridge)
            self.recorder.trace_into(None)
        await self.record(injection, event, delivered_ml=injection.delivered_ml, **detail)

    async def record(self, injection: Injection, event: str, **detail: Any) -> None:
        injection.note(event, **detail)
        self.recorder.event(injection.id, event, detail, now_s())
        with contextlib.suppress(Exception):  # a failed record is handled on its own path
            await self.recorder.injection(injection.row(self.session_id))

    def _on_recorder_failure(self, why: str) -> None:
        """The record cannot be written (disk full, read-only): stop as on a lost device."""
        injection = self.active
        if injection is not None and injection.state in (State.RUNNING, State.PAUSED):
            self.supervisor.trip(Verdict(VerdictKind.RECORDING_FAILED, why, now_s()))

    # ------------------------------------------------------------ device events
    def _on_bridge_event(self, event: BridgeEvent) -> None:
        self.supervisor.on_bridge_event(event)
        if event.kind in RECORDED_BRIDGE_EVENTS:
            self._record_bridge_event(event)

    def _record_bridge_event(self, event: BridgeEvent) -> None:
        """Lost samples, link losses and restores in the record (lost samples at most once
        a second, with how many since the last record)."""
        injection_id = (
            self.active.id if self.active is not None and self.active.state not in FINAL else None
        )
        if event.kind is BridgeEventKind.SAMPLES_LOST:
            self._lost_samples += 1
            if event.t_mono_s - self._lost_recorded_s < SAMPLES_LOST_EVERY_S:
                return
            detail = {"detail": event.detail, "gaps_since_last": self._lost_samples}
            self._lost_samples, self._lost_recorded_s = 0, event.t_mono_s
        else:
            detail = {"detail": event.detail}
        self.recorder.event(injection_id, str(event.kind), detail, event.t_mono_s)

    def _on_listener_error(self, listener: str, exc: Exception, t: float) -> None:
        self.stop_path.software_fault(f"bridge listener {listener}", exc)

    def _on_pump_alarm(self, reply: PumpReply) -> None:
        alarm = reply.alarm
        name = f"A?{alarm.value} {alarm.name}" if alarm is not None else reply.data
        self.supervisor.on_pump_alarm(now_s(), name)
