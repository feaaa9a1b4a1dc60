"""The composition root: one function builds the controller and what it stands on.

``serve``, ``inject``, the benchmarks and the tests all call ``build_system``, so what
the controller is given (the configuration file, the saved transducer calibration, the
catalogs, the devices, the record) is the same everywhere; nothing wires its own variant.
The dashboard adds its telemetry bus, MQTT and web app on top of the ``System``; the
simulator only provides the ports (ptys or ``memory://``) the devices are opened on.

The transducer's saved calibration is put in force before the controller starts. With
none, the system still builds (an engineer must be able to calibrate from the dashboard),
but the controller refuses to start an injection unless ``uncalibrated_reason`` says why
the bridge's nominal gain is acceptable (a bench run, the simulator); that reason is
recorded with the session.
"""

from __future__ import annotations

import contextlib
import gc
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from controller.calibration.session import CalibrationSession
from controller.calibration.transducer import CalibrationStore, default_store_dir
from controller.config import ControllerConfig
from controller.controller import Controller
from controller.records.recorder import Recorder
from controller.safety.supervisor import Supervisor
from drivers.ne1000 import NE1000
from drivers.transducer import TransducerBridge

SupervisorFactory = Callable[..., Supervisor]


class ConfigError(ValueError):
    """The configuration file cannot be read or is invalid; the message is one line."""


@dataclass(frozen=True)
class DeviceSettings:
    """Where the devices are: device paths, pyserial URLs or ``memory://`` ports."""

    pump_port: str
    transducer_port: str
    pump_baud: int = 19200
    pump_address: int = 0
    transducer_baud: int = 460800
    staleness_s: float = 0.020  # no sample for this long while streaming: link_lost
    pump_command_timeout_s: float = 0.2
    pump_retries: int = 1


@dataclass(frozen=True)
class SystemSettings:
    devices: DeviceSettings
    db: Path
    config: ControllerConfig = field(default_factory=ControllerConfig)
    calibration_dir: Path | None = None  # default: the user's calibration store
    uncalibrated_reason: str | None = None  # None: injections need a saved calibration
    supervisor: SupervisorFactory | None = None  # benchmarks: a baseline detector instead


def keep_built_out_of_the_collector() -> None:
    """For a process that has just built what it runs on (``serve``, ``inject``): move
    everything alive now into the collector's permanent generation. It lives as long as the
    process, and a full cyclic collection over it (tens of milliseconds for a process that
    has imported FastAPI and numpy; 140 ms measured in a test process) would otherwise hold
    the control loop at a moment of the collector's choosing. O(1). What is frozen is never
    collected: in a test worker that serves one app after another (the served-app tests
    build a ``Runtime`` in their own process) each app's cycles stay, accepted there."""
    gc.freeze()


@dataclass
class System:
    settings: SystemSettings
    pump: NE1000
    bridge: TransducerBridge
    recorder: Recorder
    calibration: CalibrationSession
    controller: Controller

    @property
    def store(self) -> CalibrationStore:
        return self.calibration.store

    async def close(self) -> None:
        """Stops any infusion first (the controller's close), then releases every device."""
        try:
            await self.controller.close()
        finally:
            for closer in (self.bridge.close, self.pump.close, self.recorder.close):
                with contextlib.suppress(Exception):
                    await closer()


def load_config(path: Path | None) -> ControllerConfig:
    """The controller's settings from TOML (sections as in ``ControllerConfig``)."""
    if path is None:
        return ControllerConfig()
    try:
        with path.open("rb") as fh:
            return ControllerConfig.model_validate(tomllib.load(fh))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {str(exc).splitlines()[0]}") from None


async def build_system(settings: SystemSettings) -> System:
    """Open the devices, put the saved calibration in force, open the record, start the
    controller. On any failure everything opened so far is closed again."""
    d = settings.devices
    async with contextlib.AsyncExitStack() as opened:
        pump = await NE1000.open(
            d.pump_port,
            d.pump_baud,
            address=d.pump_address,
            command_timeout_s=d.pump_command_timeout_s,
            retries=d.pump_retries,
        )
        opened.push_async_callback(pump.close)
        bridge = await TransducerBridge.open(
            d.transducer_port, baud=d.transducer_baud, staleness_s=d.staleness_s
        )
        opened.push_async_callback(bridge.close)
        store = CalibrationStore(settings.calibration_dir or default_store_dir())
        calibration = CalibrationSession(bridge, store)
        await calibration.load()
        recorder = Recorder(settings.db)
        await recorder.start()
        opened.push_async_callback(recorder.close)
        supervisor = settings.supervisor or Supervisor
        controller = Controller(
            pump,
            bridge,
            recorder,
            settings.config,
            uncalibrated_reason=settings.uncalibrated_reason,
            supervisor_factory=supervisor,
        )
        await controller.start()
        opened.pop_all()
    return System(settings, pump, bridge, recorder, calibration, controller)
