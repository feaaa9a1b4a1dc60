"""Async driver for the New Era NE-1000 family (NE-300/500/1000/1010/4000, WPI Aladdin).

Rules it keeps, each because a pump is not a file:
- every set is read back, and the caller gets what the pump accepted;
- values the pump cannot take are refused before anything is sent;
- queries and idempotent sets are retried; RUN is never re-sent blindly;
- an alarm reply raises :class:`PumpAlarmRaised` (the pump did not execute the
  command) and is also reported through ``on_alarm``;
- ``stop_nowait()`` puts STP on the wire at once, from plain synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from drivers.clock import now_s
from drivers.ne1000_link import NE1000Link, PumpLinkLost, PumpTimeout
from drivers.ne1000_protocol import (
    ADDRESS_MAX,
    DIAMETER_MAX_MM,
    DIAMETER_MIN_MM,
    ERROR_CODES,
    SAFE_TIMEOUT_MAX_S,
    Direction,
    LimitError,
    MalformedReply,
    PacketRejected,
    PumpAlarmRaised,
    PumpError,
    PumpReply,
    PumpStatus,
    RateUnit,
    VolumeUnit,
    best_rate_unit,
    format_number,
    parse_dispensed,
    parse_number,
    parse_rate,
    parse_version,
    parse_volume,
    rate_limits_ml_min,
)
from drivers.transport import SerialTransport, open_serial

log = logging.getLogger(__name__)

__all__ = ["NE1000", "PumpIdentity", "PumpLinkLost", "PumpTimeout", "RunInhibited"]

_RETRYABLE = (PumpTimeout, MalformedReply, PacketRejected)
T = TypeVar("T")


def _as_reply(reply: PumpReply) -> PumpReply:
    return reply


def _data(parse: Callable[[str], T]) -> Callable[[PumpReply], T]:
    return lambda reply: parse(reply.data)


class RunInhibited(PumpError):
    """RUN refused by the driver: the host's stop path has inhibited infusing (latched)."""


@dataclass(frozen=True, slots=True)
class PumpIdentity:
    model: int
    firmware: tuple[int, int]


class NE1000:
    """One pump on one serial link. Use :meth:`open` or :meth:`attach`, then ``close()``."""

    def __init__(
        self,
        transport: SerialTransport,
        address: int = 0,
        *,
        command_timeout_s: float = 0.5,
        retries: int = 2,
        on_alarm: Callable[[PumpReply], None] | None = None,
    ) -> None:
        if not 0 <= address <= ADDRESS_MAX:
            raise LimitError(f"pump address {address} outside 0-{ADDRESS_MAX}")
        self.transport = transport
        self.command_timeout_s = command_timeout_s
        self.retries = retries
        self.on_alarm = on_alarm
        self.link = NE1000Link(transport, address, self._on_unsolicited)
        self._lock = asyncio.Lock()
        self.safe_timeout_s = 0
        self.identity: PumpIdentity | None = None
        self.last_status: PumpStatus | None = None
        self.alarms: list[PumpReply] = []
        self._diameter_mm: float | None = None
        self._rate_unit: RateUnit | None = None
        self._volume_unit: VolumeUnit | None = None
        self._direction: Direction | None = None
        # Set by the host's stop path, synchronously, before STP: while set, no RUN that
        # could infuse leaves this driver, whatever coroutine was on its way to sending one.
        self.run_inhibited: str | None = None

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def open(cls, url: str, baud: int = 19200, address: int = 0, **kwargs: object) -> NE1000:
        """Open the port, find the pump however it was left, and return the driver."""
        holder: list[NE1000] = []
        transport = await open_serial(
            url,
            baud,
            on_bytes=lambda data, t: holder[0].link.on_bytes(data, t),  # noqa: PLW0108 (late binding)
            on_lost=lambda reason: holder[0].link.on_lost(reason),  # noqa: PLW0108 (late binding)
        )
        pump = cls(transport, address, **kwargs)  # type: ignore[arg-type]
        holder.append(pump)
        try:
            await pump.connect()
        except BaseException:
            await transport.close()
            raise
        return pump

    async def connect(self) -> PumpIdentity:
        """Bring the pump to basic mode with no alarm pending, and identify it.

        A safe-mode ``SAF0`` packet is understood in either mode (the manual's
        way back to basic mode). An alarm pending from a reset or a timeout
        comes back as the reply and is acknowledged by it; then we ask again.
        """
        self.link.resync()
        for _ in range(3):
            try:
                await self._command("SAF0", safe=True, retry=True)
                break
            except PumpAlarmRaised:
                continue
        self.link.safe_mode = False
        self.safe_timeout_s = 0
        self.identity = await self.version()
        return self.identity

    async def close(self) -> None:
        """Release the port. Safe mode stays as set: a pump left running then times out."""
        self.link.cancel_heartbeat()
        await self.transport.close()

    # ------------------------------------------------------------------ core
    def _on_unsolicited(self, reply: PumpReply) -> None:
        if reply.alarm is not None:
            self.alarms.append(reply)
            log.info("pump alarm A?%s", reply.alarm.value)
            if self.on_alarm is not None:
                self.on_alarm(reply)
        elif reply.status is not None:
            self.last_status = reply.status

    async def _command(
        self,
        command: str,
        *,
        retry: bool,
        safe: bool | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> PumpReply:
        return await self._ask(command, _as_reply, retry=retry, safe=safe, before_send=before_send)

    async def _ask(
        self,
        command: str,
        parse: Callable[[PumpReply], T],
        *,
        retry: bool = True,
        safe: bool | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> T:
        """Send, check and parse; a timeout, garbled or unparseable reply is retried.
        ``before_send`` runs just before the bytes go (after waiting for the link), and may
        refuse by raising."""
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            try:
                return parse(await self._exchange_once(command, safe, before_send))
            except _RETRYABLE as exc:
                if attempt == attempts - 1:
                    raise
                log.info("retrying %r after %s", command, exc)
        raise AssertionError("unreachable")

    async def _exchange_once(
        self, command: str, safe: bool | None, before_send: Callable[[], None] | None = None
    ) -> PumpReply:
        async with self._lock:
            if before_send is not None:
                before_send()
            reply = await self.link.exchange(command, self.command_timeout_s, safe=safe)
        if reply.alarm is not None:
            raise PumpAlarmRaised(reply.alarm, command)
        self.last_status = reply.status
        code = reply.error_code
        if code is not None:
            raise ERROR_CODES[code](command, reply)
        return reply

    async def _set(self, command: str) -> None:
        await self._command(command, retry=True)

    # ------------------------------------------------------------------ status
    async def status(self) -> PumpStatus:
        reply = await self._command("", retry=True)
        assert reply.status is not None
        return reply.status

    async def version(self) -> PumpIdentity:
        model, major, minor = await self._ask("VER", _data(parse_version))
        return PumpIdentity(model, (major, minor))

    async def dispensed_ml(self) -> tuple[float, float]:
        """(infused, withdrawn) since the last clear, in mL."""
        return await self._ask("DIS", _data(parse_dispensed))

    async def clear_dispensed(self, direction: Direction) -> None:
        await self._set(f"CLD{direction.value}")

    async def buzz(self, on: bool) -> None:
        await self._set(f"BUZ{int(on)}")

    # ------------------------------------------------------------------ settings
    async def diameter_mm(self) -> float:
        self._diameter_mm = await self._ask("DIA", _data(parse_number))
        return self._diameter_mm

    async def set_diameter_mm(self, diameter_mm: float) -> float:
        if not DIAMETER_MIN_MM <= diameter_mm <= DIAMETER_MAX_MM:
            raise LimitError(
                f"syringe diameter {diameter_mm} mm outside {DIAMETER_MIN_MM}-{DIAMETER_MAX_MM} mm"
            )
        await self._set(f"DIA{format_number(diameter_mm)}")
        self._rate_unit = self._volume_unit = None
        return await self.diameter_mm()

    async def rate_ml_min(self) -> float:
        value, unit = await self._ask("RAT", _data(parse_rate))
        self._rate_unit = unit
        return value * unit.ml_min_per_unit

    async def rate_limits_ml_min(self) -> tuple[float, float]:
        diameter = self._diameter_mm if self._diameter_mm is not None else await self.diameter_mm()
        return rate_limits_ml_min(diameter)

    async def set_rate_ml_min(self, rate_ml_min: float, *, running: bool = False) -> float:
        """Set the rate; returns the rate the pump accepted.

        The unit is the one that carries ``rate_ml_min`` with the least rounding.
        While the pump runs it keeps its current unit (the pump refuses a change).
        """
        low, high = await self.rate_limits_ml_min()
        if not low <= rate_ml_min <= high:
            raise LimitError(
                f"rate {rate_ml_min:g} mL/min outside the plunger-speed range "
                f"{low:.3g}-{high:.4g} mL/min for a {self._diameter_mm} mm syringe"
            )
        if running:
            if self._rate_unit is None:
                await self.rate_ml_min()
            assert self._rate_unit is not None
            unit = best_rate_unit(rate_ml_min, (self._rate_unit,))
        else:
            unit = best_rate_unit(rate_ml_min)
        value = format_number(rate_ml_min / unit.ml_min_per_unit)
        await self._set(f"RAT{value}{unit.value}")
        return await self.rate_ml_min()

    async def volume_ml(self) -> float:
        value, unit = await self._ask("VOL", _data(parse_volume))
        self._volume_unit = unit
        return value * unit.ml_per_unit

    async def set_volume_ml(self, volume_ml: float) -> float:
        """Target volume (0 = run until stopped); returns what the pump accepted."""
        if not 0 <= volume_ml <= 9999:
            raise LimitError(f"volume {volume_ml:g} mL outside 0-9999 mL")
        unit = VolumeUnit.UL if volume_ml * 1000 <= 9999 else VolumeUnit.ML
        if self._volume_unit is not unit:
            await self._set(f"VOL{unit.value}")
            self._volume_unit = unit
        await self._set(f"VOL{format_number(volume_ml / unit.ml_per_unit)}")
        return await self.volume_ml()

    async def direction(self) -> Direction:
        return await self._ask("DIR", _data(_parse_direction))

    async def set_direction(self, direction: Direction) -> Direction:
        self._direction = None  # unknown until the pump has confirmed it
        await self._set(f"DIR{direction.value}")
        self._direction = await self.direction()
        return self._direction

    def inhibit_run(self, why: str) -> None:
        """No infusing RUN from now on (a withdrawal may still run) until ``release_run``."""
        self.run_inhibited = why

    def release_run(self) -> None:
        self.run_inhibited = None

    def _check_run_allowed(self) -> None:
        if self.run_inhibited is not None and self._direction is not Direction.WITHDRAW:
            raise RunInhibited(f"RUN refused: {self.run_inhibited}")

    # ------------------------------------------------------------------ motion
    async def run(self) -> PumpStatus:
        """Start pumping. On a lost reply, ask the pump before deciding to resend. Refused
        (``RunInhibited``) while the host has inhibited infusing, checked at the moment the
        command would leave."""
        try:
            reply = await self._command("RUN", retry=False, before_send=self._check_run_allowed)
        except PumpTimeout:
            status = await self.status()
            if status.moving:
                return status
            log.warning("RUN unanswered and pump reports %s: sending RUN once more", status)
            reply = await self._command("RUN", retry=False, before_send=self._check_run_allowed)
        assert reply.status is not None
        return reply.status

    async def purge(self) -> PumpStatus:
        reply = await self._command("PUR", retry=False)
        assert reply.status is not None
        return reply.status

    def stop_nowait(self) -> asyncio.Future[PumpReply]:
        """Put STP on the wire now, even with another command in flight.

        Synchronous on purpose: the safety supervisor calls it from the control
        path. The returned future resolves with the pump's reply.
        """
        return self.link.send_nowait("STP")

    async def stop(self) -> PumpStatus:
        """Stop (the pump pauses; a second STP would reset its program) and confirm."""
        fut = self.stop_nowait()
        try:
            async with asyncio.timeout(self.command_timeout_s):
                reply = await asyncio.shield(fut)
        except (TimeoutError, asyncio.CancelledError):
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller is being cancelled, not just the reply forgotten
            # the reply never came, or was given up on (a resync cancelled it): ask
            self.link.forget(fut)
            status = await self.status()
        else:
            if reply.alarm is not None:
                self._on_unsolicited(reply)
                status = await self.status()
            else:
                assert reply.status is not None
                status = reply.status
        if status.moving:
            raise PumpTimeout(f"pump still {status.name} after STP")
        self.last_status = status
        return status

    # ------------------------------------------------------------------ safe mode
    async def enable_safe_mode(self, timeout_s: int) -> None:
        """Arm the pump's own watchdog: without a valid packet for ``timeout_s`` it stops.

        The driver then sends a status query whenever it has been quiet for a
        third of the timeout, so the watchdog fires only if this process dies
        or its event loop hangs.
        """
        if not 1 <= timeout_s <= SAFE_TIMEOUT_MAX_S:
            raise LimitError(f"safe-mode timeout {timeout_s} s outside 1-{SAFE_TIMEOUT_MAX_S} s")
        try:
            await self._command(f"SAF{timeout_s}", safe=True, retry=True)
        except PumpAlarmRaised:  # the mode changed; the reply acknowledged an alarm
            await self._command(f"SAF{timeout_s}", safe=True, retry=True)
        self.link.safe_mode = True
        self.safe_timeout_s = timeout_s
        self.link.start_heartbeat(timeout_s)

    async def disable_safe_mode(self) -> None:
        self.link.cancel_heartbeat()
        await self._command("SAF0", safe=True, retry=True)
        self.link.safe_mode = False
        self.safe_timeout_s = 0

    async def stop_then_disable_safe_mode(self) -> bool:
        """STP, and only once the pump has confirmed it, leave safe mode. A pump that did
        not confirm keeps its safe-mode timeout armed, which then stops it on its own: the
        heartbeat is cancelled, so it expires. True if the pump confirmed."""
        try:
            await self.stop()
        except PumpError as exc:
            self.link.cancel_heartbeat()  # let the pump's own timeout stop it
            log.error("pump did not confirm STP (%s): safe mode left to time out", exc)
            return False
        with contextlib.suppress(PumpError):
            await self.disable_safe_mode()
        return True

    @property
    def seconds_since_reply(self) -> float:
        last = self.link.last_reply_mono_s
        return now_s() - last if last else float("inf")


def _parse_direction(text: str) -> Direction:
    if text not in Direction._value2member_map_:
        raise MalformedReply(f"not a direction: {text!r}")
    return Direction(text)
