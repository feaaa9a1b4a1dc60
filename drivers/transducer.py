"""Host client for the PTB/1 transducer bridge: pressure samples on host time, and the interlock.

``TransducerBridge.open`` handshakes (HELLO_REQUEST -> HELLO, protocol checked),
syncs the clocks and keeps pinging (the PINGs feed both the clock fit and the
bridge's WATCHDOG). Samples are converted to mmHg with the active ``Scale`` and
handed to sample listeners synchronously, in the transport's receive callback:
this is the head of the control path, so there is no queue and no await here.

A link that goes quiet is a fault: while streaming, no sample for
``staleness_s`` (default 20 ms) raises a ``link_lost`` event at that deadline (confirmed
by a second look 2 ms later, later still while the host is busy: ``drivers.staleness``);
while idle, no packet at all for ``idle_staleness_s`` does the same.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from collections.abc import Callable

from drivers.clock import now_s
from drivers.clocksync import ClockSync, unwrap_u32
from drivers.staleness import StaleTimer
from drivers.transducer_link import (
    BridgeError,
    BridgeLinkLost,
    BridgeTimeout,
    ImplausibleBridge,
    LinkStats,
    ProtocolMismatch,
    TransducerLink,
)
from drivers.transducer_listeners import ErrorListener, EventListener, Listeners, SampleListener
from drivers.transducer_types import BridgeEvent, BridgeEventKind, Scale, check_nominal_gain
from drivers.transport import open_serial
from firmware_bridge import messages as m

__all__ = [
    "BridgeEvent",
    "BridgeEventKind",
    "EventListener",
    "SampleListener",
    "Scale",
    "TransducerBridge",
]

log = logging.getLogger(__name__)

HEAD = struct.Struct("<IIHB")
RAWS = [struct.Struct(f"<{n}i") for n in range(13)]
INT32_MAX = 2**31 - 1


class TransducerBridge:
    def __init__(
        self, *, staleness_s: float, idle_staleness_s: float, command_timeout_s: float
    ) -> None:
        self.link = TransducerLink(self._on_samples, self._on_message)
        self.clock = ClockSync()
        self.link.on_pong = self._on_pong
        self.staleness_s = staleness_s
        self.idle_staleness_s = idle_staleness_s
        self.command_timeout_s = command_timeout_s
        self.hello: m.Hello | None = None
        self.scale = Scale(0.0, 1.0, "none")
        self.status: m.Status | None = None
        self.streaming = False
        self.rate_hz = 0
        self.link_ok = True
        self.watchdog_ms = 0
        self.ping_interval_s = 0.25
        self.listeners = Listeners(self.link.stats)
        self._expected_index = 0
        self._dev_ref64 = 0
        self._last_sample_s = 0.0
        self._last_packet_s = 0.0
        self._stale = StaleTimer(
            self._stale_deadline,
            self._quiet_since,
            self._input_pending,
            self._on_stale,
            lambda: self.idle_staleness_s,
        )
        self._ping_handle: asyncio.TimerHandle | None = None
        self._closing = False
        self._rebooted_seen = False
        self._booted_cleared = False
        self._status_waiters: list[asyncio.Future[m.Status]] = []

    # ------------------------------------------------------------ open / close
    @classmethod
    async def open(
        cls,
        url: str,
        *,
        baud: int = 460800,
        scale: Scale | None = None,
        staleness_s: float = 0.020,
        idle_staleness_s: float = 1.5,
        command_timeout_s: float = 0.25,
    ) -> TransducerBridge:
        """Open the port, handshake and sync clocks; raises a ``BridgeError`` naming the cause."""
        bridge = cls(
            staleness_s=staleness_s,
            idle_staleness_s=idle_staleness_s,
            command_timeout_s=command_timeout_s,
        )
        bridge.link.transport = await open_serial(
            url, baud, on_bytes=bridge.link.on_bytes, on_lost=bridge._on_transport_lost
        )
        try:
            await bridge._connect(scale)
        except BaseException:
            await bridge.close(graceful=False)
            raise
        return bridge

    async def _connect(self, scale: Scale | None) -> None:
        for attempt in range(3):
            try:
                self.hello = await self.link.hello(self.command_timeout_s)
                break
            except BridgeError:
                if attempt == 2:
                    raise
        assert self.hello is not None
        if self.hello.proto != 1:
            raise ProtocolMismatch(f"bridge speaks PTB/{self.hello.proto}; this host speaks PTB/1")
        why = check_nominal_gain(self.hello.nominal_gain, self.hello.adc_bits)
        if why is not None:
            raise ImplausibleBridge(f"bridge HELLO refused: {why}; check the bridge firmware")
        self.scale = scale or self.nominal_scale()
        self._last_packet_s = now_s()
        await self._sync_clock(5)
        self._schedule_ping()
        self._arm_stale_timer()

    async def _sync_clock(self, wanted: int) -> None:
        """``wanted`` PING round trips for the clock fit; a PONG lost to line noise is not a
        dead bridge, so up to twice as many are tried."""
        answered = 0
        for _ in range(2 * wanted):
            try:
                await self.link.ping(self.command_timeout_s)
            except BridgeTimeout:
                continue
            answered += 1
            if answered == wanted:
                return
        raise BridgeTimeout(f"only {answered} of {wanted} PINGs answered by the bridge")

    def nominal_scale(self) -> Scale:
        """The bridge's own idea of zero and gain, for a transducer never calibrated."""
        assert self.hello is not None
        gain = self.hello.nominal_gain
        return Scale(float(self.hello.nominal_zero), gain, "nominal (HELLO), not calibrated")

    async def close(self, *, graceful: bool = True) -> None:
        """Stop streaming and disarm the watchdog, then close the port.

        ``graceful=False`` closes without a word, as a crashed host would: an armed
        watchdog then expires on the bridge and asserts the interlock.
        """
        self._closing = True
        transport = self.link.transport
        if graceful and transport is not None and transport.is_open:
            try:
                if self.streaming:
                    await self.stop_stream()
                if self.watchdog_ms:
                    await self.disarm_watchdog()
            except BridgeError:
                pass
        self._cancel_timers()
        self.link.fail_pending("bridge closed")
        if transport is not None:
            await transport.close()

    # ------------------------------------------------------------ listeners
    def add_sample_listener(self, listener: SampleListener) -> Callable[[], None]:
        return self.listeners.add_sample(listener)

    def add_event_listener(self, listener: EventListener) -> Callable[[], None]:
        return self.listeners.add_event(listener)

    @property
    def on_listener_error(self) -> ErrorListener | None:
        return self.listeners.on_error

    @on_listener_error.setter
    def on_listener_error(self, handler: ErrorListener | None) -> None:
        self.listeners.on_error = handler

    def _emit(self, kind: BridgeEventKind, t_s: float, detail: str, **extra: object) -> None:
        self.listeners.emit(BridgeEvent(kind, t_s, detail, **extra))  # type: ignore[arg-type]

    @property
    def last_sample_rx_s(self) -> float:
        """Host time the newest SAMPLES packet arrived (what staleness is measured from)."""
        return self._last_sample_s

    @property
    def stats(self) -> LinkStats:
        return self.link.stats

    # ------------------------------------------------------------ commands
    async def start_stream(self, rate_hz: int = 1000, per_frame: int = 1) -> None:
        frame_interval_s = per_frame / rate_hz
        if frame_interval_s >= self.staleness_s:
            raise ValueError(
                f"{per_frame} samples per frame at {rate_hz} Hz arrive every "
                f"{frame_interval_s * 1e3:.1f} ms, not within the {self.staleness_s * 1e3:.0f} ms "
                "staleness limit"
            )
        self._expected_index = 0
        await self.link.command("STREAM", m.stream(rate_hz, per_frame), self.command_timeout_s)
        self.streaming, self.rate_hz = True, rate_hz
        self._last_sample_s = now_s() + frame_interval_s
        self._arm_stale_timer()

    async def stop_stream(self) -> None:
        self.streaming, self.rate_hz = False, 0
        await self.link.command("STREAM stop", m.stream(0, 1), self.command_timeout_s)
        self._arm_stale_timer()

    async def arm_watchdog(self, timeout_ms: int) -> None:
        """Armed, the bridge asserts the interlock if the host is quiet for ``timeout_ms``."""
        await self.link.command("WATCHDOG", m.watchdog(timeout_ms), self.command_timeout_s)
        self.watchdog_ms = timeout_ms
        self.ping_interval_s = min(0.25, timeout_ms / 3000.0)
        self._schedule_ping()

    async def disarm_watchdog(self) -> None:
        await self.link.command("WATCHDOG off", m.watchdog(0), self.command_timeout_s)
        self.watchdog_ms = 0
        self.ping_interval_s = 0.25

    def raw_limit_for(self, pressure_mmhg: float) -> int:
        return min(INT32_MAX, math.ceil(self.scale.to_raw(pressure_mmhg)))

    async def set_trip_limit(self, pressure_mmhg: float, consecutive: int) -> int:
        """Arm the bridge's own over-pressure trip; returns the raw limit sent."""
        raw = self.raw_limit_for(pressure_mmhg)
        await self.link.command(
            "TRIP_LIMIT", m.trip_limit(raw, consecutive), self.command_timeout_s
        )
        return raw

    async def clear_trip_limit(self) -> None:
        await self.link.command("TRIP_LIMIT off", m.trip_limit(0, 0), self.command_timeout_s)

    def assert_interlock_nowait(self) -> None:
        """Stop path: the INTERLOCK frame goes to the OS now; its ACK is not waited for."""
        self.link.send_nowait(m.interlock(True))

    async def assert_interlock(self) -> None:
        await self.link.command("INTERLOCK assert", m.interlock(True), self.command_timeout_s)

    async def release_interlock(self) -> None:
        """Raises ``InterlockReleaseRefused`` while the bridge still sees the cause."""
        await self.link.command("INTERLOCK release", m.interlock(False), self.command_timeout_s)

    async def ping(self) -> float:
        sent, received, _ = await self.link.ping(self.command_timeout_s)
        return received - sent

    # ------------------------------------------------------------ receive path (sync)
    def _on_samples(self, payload: bytes, t_rx_s: float) -> None:
        if len(payload) < HEAD.size:
            self.stats.malformed += 1
            return
        index, t_us, period_us, n = HEAD.unpack_from(payload)
        if not 1 <= n <= 12 or len(payload) != HEAD.size + 4 * n:
            self.stats.malformed += 1
            return
        self._last_sample_s = self._last_packet_s = t_rx_s
        if index != self._expected_index:
            self._index_gap(index, t_rx_s)
        self._expected_index = index + n
        self.stats.samples += n
        if not self.link_ok:
            self.link_ok = True
            self._emit(BridgeEventKind.LINK_RESTORED, t_rx_s, "samples flow again")
        dev64 = self._unwrap(t_us)
        scale, to_host = self.scale, self.clock.to_host_s
        zero, inv_gain = scale.zero_counts, 1.0 / scale.gain_counts_per_mmhg
        listeners = self.listeners.samples
        for k, raw in enumerate(RAWS[n].unpack_from(payload, HEAD.size)):
            t_s = to_host(dev64 + k * period_us)
            pressure = (raw - zero) * inv_gain
            for listener in listeners:
                try:
                    listener(index + k, t_s, pressure, raw)
                except Exception as exc:  # isolated: the next listener still gets the sample
                    self.listeners.failed(listener, exc, t_s)

    def _index_gap(self, index: int, t_rx_s: float) -> None:
        if index > self._expected_index:
            lost = index - self._expected_index
            self.stats.lost_samples += lost
            self._emit(
                BridgeEventKind.SAMPLES_LOST, t_rx_s, f"{lost} samples lost before index {index}"
            )
        else:
            self._emit(BridgeEventKind.SAMPLES_LOST, t_rx_s, f"stream index went back to {index}")

    def _unwrap(self, t32: int) -> int:
        self._dev_ref64 = unwrap_u32(t32, self._dev_ref64)
        return self._dev_ref64

    def _on_pong(self, sent_s: float, received_s: float, t_us: int) -> None:
        self._last_packet_s = received_s
        if not self.clock.ready:
            self._dev_ref64 = t_us
        self.clock.add(sent_s, received_s, self._unwrap(t_us))

    def _on_message(self, msg: m.DeviceMessage, t_rx_s: float) -> None:
        self._last_packet_s = t_rx_s
        if isinstance(msg, m.Trip):
            self._emit(BridgeEventKind.TRIP, t_rx_s, f"bridge tripped: {msg.reason.name}", trip=msg)
        elif isinstance(msg, m.Status):
            self._on_status(msg, t_rx_s)
        elif isinstance(msg, m.Hello) and self.hello is not None:  # a boot HELLO before ours is old
            self._on_reboot(t_rx_s, "bridge sent HELLO unasked: it rebooted")
        elif isinstance(msg, m.Log):
            self._emit(BridgeEventKind.LOG, t_rx_s, f"bridge log {msg.level}: {msg.text}")

    async def current_status(self, timeout_s: float = 1.0) -> m.Status:
        """The bridge's STATUS, waiting for the first one if none has come yet (twice a second)."""
        if self.status is None:
            future: asyncio.Future[m.Status] = asyncio.get_running_loop().create_future()
            self._status_waiters.append(future)
            try:
                async with asyncio.timeout(timeout_s):
                    return await future
            except TimeoutError:
                raise BridgeTimeout(f"no STATUS from the bridge in {timeout_s:.1f} s") from None
        return self.status

    def _on_status(self, status: m.Status, t_rx_s: float) -> None:
        before = self.status
        self.status = status
        for waiter in self._status_waiters:
            if not waiter.done():
                waiter.set_result(status)
        self._status_waiters.clear()
        if m.StatusFlag.BOOTED not in status.flags:
            self._booted_cleared = True
        elif self._booted_cleared:
            self._on_reboot(t_rx_s, "bridge reports BOOTED again: it rebooted")
        if before is None or before.flags != status.flags:
            self._emit(
                BridgeEventKind.STATUS, t_rx_s, f"bridge flags {status.flags!r}", flags=status.flags
            )

    def _on_reboot(self, t_rx_s: float, why: str) -> None:
        if self._rebooted_seen:
            return
        self._rebooted_seen = True
        self._booted_cleared = False
        self.streaming, self.rate_hz, self.watchdog_ms = False, 0, 0
        self.clock = ClockSync()
        self._emit(BridgeEventKind.REBOOTED, t_rx_s, why)
        self._arm_stale_timer()

    async def recover_from_reboot(self) -> None:
        """After a ``rebooted`` event: handshake again (clears BOOTED) and resync the clock."""
        self.hello = await self.link.hello(self.command_timeout_s)
        self._rebooted_seen = False
        await self._sync_clock(3)

    # ------------------------------------------------------------ timers
    def _schedule_ping(self) -> None:
        if self._ping_handle is not None:
            self._ping_handle.cancel()
        loop = asyncio.get_running_loop()
        self._ping_handle = loop.call_later(self.ping_interval_s, self._ping_tick)

    def _ping_tick(self) -> None:
        try:
            self.link.ping_nowait()
        except BridgeLinkLost:
            return
        self._schedule_ping()

    def _arm_stale_timer(self) -> None:
        if not self._closing:
            self._stale.arm()

    def _stale_deadline(self) -> float:
        if self.streaming:
            return self._last_sample_s + self.staleness_s
        return self._last_packet_s + self.idle_staleness_s

    def _quiet_since(self) -> float:
        return self._last_sample_s if self.streaming else self._last_packet_s

    def _input_pending(self) -> bool:
        transport = self.link.transport
        return transport is not None and transport.input_pending()

    def _on_stale(self, now: float, quiet_since_s: float) -> None:
        if self.link_ok:
            self.link_ok = False
            self.stats.stale_events += 1
            what = "no sample" if self.streaming else "no packet"
            quiet_ms = (now - quiet_since_s) * 1e3
            self._emit(
                BridgeEventKind.LINK_LOST, now, f"{what} from the bridge for {quiet_ms:.1f} ms"
            )

    def _on_transport_lost(self, reason: str) -> None:
        if self._closing:
            return
        self._cancel_timers()
        self.link.fail_pending(reason)
        if self.link_ok:
            self.link_ok = False
            self._emit(BridgeEventKind.LINK_LOST, now_s(), f"bridge port lost: {reason}")

    def _cancel_timers(self) -> None:
        self._stale.cancel()
        if self._ping_handle is not None:
            self._ping_handle.cancel()
        self._ping_handle = None
