"""Everything ``serve`` runs in one process, started and stopped by the app's lifespan.

The controller and its devices come from the composition root (``build_system``); the
dashboard adds what only it needs: the telemetry bus, the MQTT publisher, the procedure
book and the gravimetric bench. With ``--sim`` the devices are the built-in simulator's,
handed in as a ``Simulation`` by the CLI.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.alarms import alarm_priority, pre_alarms
from controller.calibration.gravimetric_bench import GravimetricBench
from controller.calibration.session import CalibrationSession
from controller.calibration.transducer import collect_raw, default_store_dir
from controller.config import ControllerConfig
from controller.controller import Controller
from controller.injection import FINAL, Injection, State
from controller.procedure.book import ProcedureBook
from controller.procedure.casebook import CaseBook
from controller.records.recorder import Recorder
from controller.safety.verdict import Verdict
from controller.system import (
    DeviceSettings,
    System,
    SystemSettings,
    build_system,
    keep_built_out_of_the_collector,
)
from dashboard.auth import Directory
from dashboard.simulation import Simulation
from dashboard.telemetry.bus import TelemetryBus
from dashboard.telemetry.mqtt import MqttPublisher
from drivers.clock import now_s
from drivers.ne1000 import NE1000
from drivers.transducer import TransducerBridge

STATE_PERIOD_S = 0.1


@dataclass(frozen=True)
class ServeSettings:
    db: Path = Path("injectctl.sqlite")
    token: str = ""
    devices: DeviceSettings | None = None  # real devices; None when ``simulation`` is given
    simulation: Simulation | None = None
    staleness_s: float = 0.020
    calibration_dir: Path | None = None  # default: the user's store; with a simulation, a temp
    config: ControllerConfig = field(default_factory=ControllerConfig)
    # Host headers the app answers (DNS rebinding: a page whose name resolves to us later
    # must not read the record); serve adds its --host and the names in --allow-host
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1", "[::1]")


class Runtime:
    def __init__(self, settings: ServeSettings) -> None:
        if (settings.devices is None) == (settings.simulation is None):
            raise ValueError("serve runs on real devices or on the simulator: give one of them")
        stop_token = settings.config.mqtt.stop_token
        if stop_token is not None and stop_token.get_secret_value() == settings.token:
            raise ValueError(
                "[mqtt] stop_token must differ from the control token: whoever reads cmd/stop "
                "would otherwise hold the token that starts injections"
            )
        self.settings = settings
        self.system: System | None = None
        self.gravimetric: GravimetricBench | None = None
        self._procedures: ProcedureBook | None = None
        self.cases: CaseBook | None = None
        self.people = Directory(settings.db, settings.token)
        self.bus = TelemetryBus()
        self.mqtt: MqttPublisher | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._last_state: dict[str, Any] | None = None
        self._state_handle: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ what the APIs use
    @property
    def sim(self) -> Simulation | None:
        return self.settings.simulation

    @property
    def controller(self) -> Controller | None:
        return self.system.controller if self.system is not None else None

    @property
    def pump(self) -> NE1000 | None:
        return self.system.pump if self.system is not None else None

    @property
    def bridge(self) -> TransducerBridge | None:
        return self.system.bridge if self.system is not None else None

    @property
    def calibration(self) -> CalibrationSession | None:
        return self.system.calibration if self.system is not None else None

    @property
    def procedures(self) -> ProcedureBook:
        assert self._procedures is not None, "runtime not started"
        return self._procedures

    @property
    def recorder(self) -> Recorder:
        assert self.system is not None, "runtime not started"
        return self.system.recorder

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        s = self.settings
        store_dir = s.calibration_dir
        if s.simulation is not None:
            await s.simulation.start()
            if store_dir is None:  # the simulator's calibrations are not the user's
                self._tmp = tempfile.TemporaryDirectory(prefix="injectctl-serve-")
                store_dir = Path(self._tmp.name) / "calibrations"
        self.system = await build_system(self._system_settings(store_dir or default_store_dir()))
        self.gravimetric = GravimetricBench(
            self.system.store.directory,
            s.simulation.gravimetric_bench if s.simulation is not None else None,
        )
        self._procedures = ProcedureBook(self.system.recorder)
        await self._procedures.load()
        self.cases = CaseBook(self.system.recorder)
        await self.people.load()
        self.system.bridge.add_sample_listener(self.bus.add_sample)
        self.bus.start()
        self._start_mqtt()
        self._publish_state()
        keep_built_out_of_the_collector()

    def _system_settings(self, store_dir: Path) -> SystemSettings:
        s = self.settings
        if s.simulation is not None:
            devices = DeviceSettings(
                s.simulation.pump_port, s.simulation.bridge_port, staleness_s=s.staleness_s
            )
            reason: str | None = s.simulation.uncalibrated_reason
        else:
            assert s.devices is not None
            devices, reason = s.devices, None
        return SystemSettings(
            devices=devices,
            db=s.db,
            config=s.config,
            calibration_dir=store_dir,
            uncalibrated_reason=reason,
        )

    async def stop(self) -> None:
        """Stops any infusion first (the controller's close), then everything else."""
        if self._state_handle is not None:
            self._state_handle.cancel()
        self.bus.stop()
        if self.gravimetric is not None:
            await self.gravimetric.stop()
        try:
            if self.system is not None:
                await self.system.controller.close()
        finally:
            if self.mqtt is not None:  # after the controller: its last events go out first
                await self.mqtt.stop()
            if self.system is not None:
                await self.system.close()
            if self.sim is not None:
                await self.sim.stop()
            if self._tmp is not None:
                self._tmp.cleanup()

    async def zero(self) -> float:
        """Zero to atmosphere; on the simulator its stopcock is turned to air and back."""
        controller = self.controller
        assert controller is not None and self.bridge is not None
        if self.sim is None:
            return await controller.zero_transducer()
        await self.sim.stopcock("air")
        try:
            await collect_raw(self.bridge, 100, timeout_s=2.0)  # let the reading settle
            return await controller.zero_transducer()
        finally:
            await self.sim.stopcock("line")

    def _start_mqtt(self) -> None:
        config = self.settings.config.mqtt
        if config.url is None:
            return
        assert self.bridge is not None and self.bridge.hello is not None
        self.mqtt = MqttPublisher(
            config,
            device_id=f"{self.bridge.hello.device_id:08x}",
            bus=self.bus,
            state=self.state,
            remote_stop=self._remote_stop,
            record=self._record_remote,
        )
        self.recorder.observers.append(self.mqtt.on_record)
        self.mqtt.start()

    async def _remote_stop(self) -> tuple[str, str | None]:
        """MQTT cmd/stop with a valid token: stop what runs, as the STOP button does.

        Returns the outcome and the injection the command was aimed at, captured before
        the stop so the record attributes it even though nothing runs afterwards.
        """
        c = self.controller
        if c is None or c.active is None or not self.injection_running():
            return "nothing running", None
        aimed_at = c.active.id
        stopped = await c.stop_injection(aimed_at)
        return f"stopped injection {stopped.id} ({stopped.state})", aimed_at

    def _record_remote(self, kind: str, detail: dict[str, Any]) -> None:
        """Remote commands and their refusals go into the record, against their target.

        The target is the one named in ``detail`` or else the injection running now.
        """
        c = self.controller
        active = c.active if c is not None else None
        running = active.id if active is not None and self.injection_running() else None
        named = detail.pop("injection_id", None)
        self.recorder.event(named if named is not None else running, kind, detail, now_s())

    def injection_running(self) -> bool:
        active = self.controller.active if self.controller is not None else None
        return active is not None and active.state in (State.RUNNING, State.PAUSED)

    def state(self) -> dict[str, Any]:
        c = self.controller
        assert c is not None
        active = c.active
        alarms = [] if c.alarm is None else [_alarm_view(c.alarm)]
        zero_age_s = None if c.zeroed_at_mono_s is None else now_s() - c.zeroed_at_mono_s
        coming = pre_alarms(active, zero_age_s, c.config.zero_max_age_s)
        running = active is not None and active.state not in FINAL
        pressure = c.supervisor.last_pressure_mmhg
        return {
            "state": str(active.state) if active is not None else "idle",
            "pressure_mmhg": None if math.isnan(pressure) else round(pressure, 2),
            "infused_ml": round(active.delivered_ml, 4) if active is not None else 0.0,
            "rate_ml_min": _rate_now(active) if running and active is not None else 0.0,
            "alarms": alarms,
            "injection_id": active.id if active is not None else None,
            "line_settled": c.supervisor.rest_status().settled,
            "pre_alarms": [p.view() for p in coming],
        }

    def health(self) -> dict[str, Any]:
        pump, bridge = self.pump, self.bridge
        pump_ok = pump is not None and pump.transport.is_open
        bridge_ok = bridge is not None and bridge.link_ok and bridge.streaming
        recorder_ok = self.system is not None and self.recorder.failure is None
        return {
            "status": "ok" if pump_ok and bridge_ok and recorder_ok else "degraded",
            "recorder": {
                "ok": recorder_ok,
                "error": self.recorder.failure if self.system is not None else "not started",
            },
            "pump": {"connected": pump_ok, "simulated": self.sim is not None},
            "transducer": {
                "connected": bridge_ok,
                "calibration": bridge.scale.source if bridge is not None else None,
                "calibrated": bridge.scale.calibrated if bridge is not None else False,
            },
            **({"mqtt": self.mqtt.health()} if self.mqtt is not None else {}),
        }

    def _publish_state(self) -> None:
        """State changes go to every telemetry client (never dropped)."""
        loop = asyncio.get_running_loop()
        self._state_handle = loop.call_later(STATE_PERIOD_S, self._publish_state)
        state = self.state()
        comparable = {k: v for k, v in state.items() if k != "pressure_mmhg"}
        if comparable != self._last_state:
            self._last_state = comparable
            self.bus.publish_event("state", state)


def _rate_now(injection: Injection) -> float:
    """The rate the pump runs at: the planned one, or the pressure limiter's."""
    now = injection.rate_now_ml_min
    return round(now, 4) if now is not None else injection.request.rate_ml_min


def _alarm_view(alarm: Verdict) -> dict[str, Any]:
    return {"kind": alarm.kind, "priority": alarm_priority(alarm.kind), "detail": alarm.detail}
