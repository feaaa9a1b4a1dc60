"""Everything ``serve`` runs in one process: devices (or the simulator), recorder,
controller and the telemetry bus; started and stopped by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.calibration.session import CalibrationSession
from controller.calibration.transducer import CalibrationStore, collect_raw, default_store_dir
from controller.config import ControllerConfig
from controller.controller import Controller
from controller.injection import FINAL, Injection, State
from controller.procedure.book import ProcedureBook
from controller.records.recorder import Recorder
from dashboard.api.gravimetric import GravimetricBench
from dashboard.telemetry.bus import TelemetryBus
from dashboard.telemetry.mqtt import MqttPublisher
from drivers.ne1000 import NE1000
from drivers.transducer import TransducerBridge
from simulator.rig_process import RigProcess
from simulator.scenario import load_scenario

STATE_PERIOD_S = 0.1


@dataclass(frozen=True)
class ServeSettings:
    sim: bool = True
    pump_port: str | None = None
    transducer_port: str | None = None
    pump_baud: int = 19200
    pump_address: int = 0
    transducer_baud: int = 460800
    db: Path = Path("injectctl.sqlite")
    token: str = ""
    scenario: str = "normal-liver-saline-1ml"
    staleness_s: float = 0.020
    calibration_dir: Path | None = None  # default: the user's store; with --sim, a temporary one
    config: ControllerConfig = field(default_factory=ControllerConfig)


class Runtime:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.sim: RigProcess | None = None  # the simulator, in its own process
        self.pump: NE1000 | None = None
        self.bridge: TransducerBridge | None = None
        self.recorder = Recorder(settings.db)
        self.controller: Controller | None = None
        self.calibration: CalibrationSession | None = None
        self.gravimetric: GravimetricBench | None = None
        self.procedures = ProcedureBook(self.recorder)
        self.bus = TelemetryBus()
        self.mqtt: MqttPublisher | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._last_state: dict[str, Any] | None = None
        self._state_handle: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        s = self.settings
        pump_port, bridge_port = s.pump_port, s.transducer_port
        if s.sim:
            self._tmp = tempfile.TemporaryDirectory(prefix="injectctl-serve-")
            folder = Path(self._tmp.name)
            self.sim = RigProcess(load_scenario(s.scenario), folder / "pump", folder / "bridge")
            await self.sim.start()
            pump_port, bridge_port = self.sim.pump_port, self.sim.bridge_port
        assert pump_port is not None and bridge_port is not None
        self.pump = await NE1000.open(
            pump_port, s.pump_baud, address=s.pump_address, command_timeout_s=0.2, retries=1
        )
        self.bridge = await TransducerBridge.open(
            bridge_port, baud=s.transducer_baud, staleness_s=s.staleness_s
        )
        store_dir = s.calibration_dir or (
            Path(self._tmp.name) / "calibrations" if self._tmp is not None else default_store_dir()
        )
        self.calibration = CalibrationSession(self.bridge, CalibrationStore(store_dir))
        self.gravimetric = GravimetricBench(store_dir)
        await self.calibration.load()
        await self.recorder.start()
        await self.procedures.load()
        self.controller = Controller(self.pump, self.bridge, self.recorder, s.config)
        await self.controller.start()
        self.bridge.add_sample_listener(self.bus.add_sample)
        self.bus.start()
        self._start_mqtt()
        self._publish_state()
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # collector, whose full passes over it would otherwise stall the control loop.
        gc.freeze()

    async def stop(self) -> None:
        """Stops any infusion first (the controller's close), then everything else."""
        if self._state_handle is not None:
            self._state_handle.cancel()
        self.bus.stop()
        if self.gravimetric is not None:
            await self.gravimetric.stop()
        if self.controller is not None:
            await self.controller.close()
        if self.mqtt is not None:  # after the controller: its last events go out first
            await self.mqtt.stop()
        for closer in (self.bridge, self.pump):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer.close()
        await self.recorder.close()
        if self.sim is not None:
            await self.sim.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def zero(self) -> float:
        assert self.controller is not None and self.bridge is not None
        if self.sim is None:
            return await self.controller.zero_transducer()
        await self.sim.request("stopcock", "air")  # the simulated stopcock, open to air
        try:
            await collect_raw(self.bridge, 100, timeout_s=2.0)  # let the reading settle
            return await self.controller.zero_transducer()
        finally:
            await self.sim.request("stopcock", "line")

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
            token=self.settings.token,
            remote_stop=self._remote_stop,
        )
        self.recorder.observers.append(self.mqtt.on_record)
        self.mqtt.start()

    async def _remote_stop(self) -> str:
        """MQTT cmd/stop with a valid token: stop what runs, as the STOP button does."""
        c = self.controller
        if c is None or c.active is None or not self.injection_running():
            return "nothing running"
        stopped = await c.stop_injection(c.active.id)
        return f"stopped injection {stopped.id}"

    def injection_running(self) -> bool:
        active = self.controller.active if self.controller is not None else None
        return active is not None and active.state in (State.RUNNING, State.PAUSED)

    def state(self) -> dict[str, Any]:
        c = self.controller
        assert c is not None
        active = c.active
        alarms = [] if c.alarm is None else [{"kind": c.alarm.kind, "detail": c.alarm.detail}]
        running = active is not None and active.state not in FINAL
        pressure = c.supervisor.last_pressure_mmhg
        return {
            "state": str(active.state) if active is not None else "idle",
            "pressure_mmhg": None if math.isnan(pressure) else round(pressure, 2),
            "infused_ml": round(active.delivered_ml, 4) if active is not None else 0.0,
            "rate_ml_min": _rate_now(active) if running and active is not None else 0.0,
            "alarms": alarms,
            "injection_id": active.id if active is not None else None,
        }

    def health(self) -> dict[str, Any]:
        pump_ok = self.pump is not None and self.pump.transport.is_open
        bridge_ok = self.bridge is not None and self.bridge.link_ok and self.bridge.streaming
        recorder_ok = self.recorder.failure is None
        return {
            "status": "ok" if pump_ok and bridge_ok and recorder_ok else "degraded",
            "recorder": {"ok": recorder_ok, "error": self.recorder.failure},
            "pump": {"connected": pump_ok, "simulated": self.sim is not None},
            "transducer": {
                "connected": bridge_ok,
                "calibration": self.bridge.scale.source if self.bridge else None,
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
