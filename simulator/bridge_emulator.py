"""The transducer bridge on a pseudo-terminal: the firmware core with a simulated ADC.

The same ``BridgeCore`` that runs on the board runs here; this module is its
hardware layer. Samples are taken on the core's schedule at their exact device
times (if the event loop wakes late, the missed conversions are taken at their
own times, so the stream keeps its timing as a board's would). The interlock is
a callback, wired by ``injectctl sim`` to the NE-1000 emulator's external stop
input. Faults are injected from Python (``emulator.faults``), in the manner of
OctoPrint's virtual printer.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from pathlib import Path

from drivers.clocksync import unwrap_u32
from firmware_bridge.firmware.core import MASK32, BridgeCore
from simulator.links import device_link
from simulator.transducer_model import (
    RAW_MAX,
    ConstantPressure,
    PressureSource,
    TransducerModel,
)

DEFAULT_DEVICE_ID = 0x1B2D0001
MAX_CATCHUP_SAMPLES = 2000
TX_LIMIT_BYTES = 16384


class BridgeFaults:
    """Fault injection: what a real bridge, cable or transducer does wrong."""

    def __init__(self, emulator: BridgeEmulator) -> None:
        self._emu = emulator
        self.sensor_open = False
        self.saturated = False
        self.stuck = False
        self.excitation_mv: int | None = None
        self.silent_until_s = 0.0

    def open_sensor(self, on: bool = True) -> None:
        """The transducer cable is pulled: the bridge inputs float to a rail."""
        self.sensor_open = on

    def saturate(self, on: bool = True) -> None:
        self.saturated = on

    def stick(self, on: bool = True) -> None:
        """The reading freezes at its last value (a failed ADC, a kinked line)."""
        self.stuck = on

    def noise(self, mmhg_rms: float) -> None:
        self._emu.transducer.noise_mmhg_rms = mmhg_rms

    def excitation(self, mv: int | None) -> None:
        """Measured excitation; ``None`` is the nominal value."""
        self.excitation_mv = mv

    def go_silent(self, duration_s: float = math.inf) -> None:
        """Nothing reaches the host (the device keeps running and hears it)."""
        self.silent_until_s = self._emu.loop_time() + duration_s

    def inject_garbage(self, n_bytes: int = 16) -> None:
        self._emu.write_raw(bytes(self._emu.rng.randrange(256) for _ in range(n_bytes)))

    def reboot(self) -> None:
        self._emu.reboot()

    def clear(self) -> None:
        self.sensor_open = self.saturated = self.stuck = False
        self.excitation_mv = None
        self.silent_until_s = 0.0


class BridgeEmulator:
    def __init__(
        self,
        link_path: str | Path,
        *,
        source: PressureSource | None = None,
        transducer: TransducerModel | None = None,
        on_interlock: Callable[[bool], None] | None = None,
        device_id: int = DEFAULT_DEVICE_ID,
        drift_ppm: float = 0.0,
        clock_start_us: int = 0,
        seed: int = 0,
        max_rate_hz: int = 1000,
    ) -> None:
        self.link_target = str(link_path)
        self.link = device_link(link_path, self._on_host_bytes)
        self.source: PressureSource = source if source is not None else ConstantPressure()
        self.transducer = transducer if transducer is not None else TransducerModel()
        self.on_interlock = on_interlock
        self.device_id = device_id
        self.drift = drift_ppm * 1e-6
        self.clock_start_us = clock_start_us
        self.rng = random.Random(seed)
        self.max_rate_hz = max_rate_hz
        self.faults = BridgeFaults(self)
        self.raw_queue: list[int] = []
        self.interlock = False
        self.interlock_moves = 0
        self.boots = 0
        self._last_raw = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._boot_s = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self.core = self._new_core()

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._boot_s = self._loop.time()
        self.link.plug()
        self.reboot()

    async def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.link.unplug()

    async def __aenter__(self) -> BridgeEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def path(self) -> str:
        return self.link_target

    def set_pressure(self, pressure_mmhg: float) -> None:
        """Pressure at the transducer, when the source is a ``ConstantPressure``."""
        if not isinstance(self.source, ConstantPressure):
            raise TypeError("set_pressure needs a ConstantPressure source")
        self.source.value_mmhg = pressure_mmhg

    def queue_raw(self, values: list[int]) -> None:
        """Exact ADC codes for the next conversions, before the source takes over again."""
        self.raw_queue.extend(values)

    def reboot(self) -> None:
        """Power cycle: state lost, the interlock released, HELLO and BOOTED again."""
        if self.interlock:
            self._set_interlock(False)
        self.core = self._new_core()
        self.boots += 1
        self.core.boot(self._now_dev() & MASK32)
        self._flush()
        self._schedule()

    # ------------------------------------------------------------ clocks
    def loop_time(self) -> float:
        assert self._loop is not None, "emulator not started"
        return self._loop.time()

    def _now_dev(self) -> int:
        return self.host_to_device_us(self.loop_time())

    def host_to_device_us(self, t_mono_s: float) -> int:
        """Device clock (unwrapped) at a host monotonic time; it runs ``drift_ppm`` fast."""
        # rounded, not truncated: the host time of a device deadline maps back onto that deadline
        return self.clock_start_us + round((t_mono_s - self._boot_s) * 1e6 * (1.0 + self.drift))

    def device_to_host_s(self, device_us: int) -> float:
        return self._boot_s + (device_us - self.clock_start_us) / 1e6 / (1.0 + self.drift)

    # ------------------------------------------------------------ the hardware loop
    def _new_core(self) -> BridgeCore:
        return BridgeCore(
            self.device_id,
            0,
            5369.0,
            excitation_mv=self.transducer.excitation_mv,
            max_rate_hz=self.max_rate_hz,
            on_interlock=self._set_interlock,
            tx_limit_bytes=TX_LIMIT_BYTES,
        )

    def _schedule(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        now64 = self._now_dev()
        due64 = unwrap_u32(self.core.next_deadline_us(), now64)
        assert self._loop is not None
        # never at or before now: a deadline already due is taken by the wake after this one
        when = max(self.device_to_host_s(due64), self._loop.time() + 1e-6)
        self._handle = self._loop.call_at(when, self._wake)

    def _wake(self) -> None:
        self._handle = None
        now64 = self._now_dev()
        for _ in range(MAX_CATCHUP_SAMPLES):
            due64 = unwrap_u32(self.core.next_sample_us, now64)
            if due64 > now64:
                break
            self._take_sample(due64)
        self.core.tick(now64 & MASK32)
        self._flush()
        self._schedule()

    def _take_sample(self, t_dev64: int) -> None:
        faults = self.faults
        pressure = self.source.pressure_mmhg(self.device_to_host_s(t_dev64))  # the plant moves on
        if self.raw_queue:
            raw = self.raw_queue.pop(0)
        elif faults.stuck:
            raw = self._last_raw
        elif faults.sensor_open or faults.saturated:
            raw = RAW_MAX
        else:
            raw = self.transducer.raw(pressure, self.rng)
        self._last_raw = raw
        exc = faults.excitation_mv
        excitation = self.transducer.excitation_mv if exc is None else exc
        self.core.sample(raw, t_dev64 & MASK32, faults.sensor_open, excitation)

    def _set_interlock(self, asserted: bool) -> None:
        self.interlock = asserted
        self.interlock_moves += 1
        if self.on_interlock is not None:
            self.on_interlock(asserted)

    def _on_host_bytes(self, data: bytes, t_mono_s: float) -> None:
        self.core.receive(data, self._now_dev() & MASK32)
        self._flush()
        self._schedule()

    def _flush(self) -> None:
        out = self.core.take_output()
        if out and self.loop_time() >= self.faults.silent_until_s:
            self.link.write(out)

    def write_raw(self, data: bytes) -> None:
        self.link.write(data)
