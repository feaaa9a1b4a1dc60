"""PTB/1 link to the transducer bridge: framing, command/ACK matching and liveness.

Everything here runs in the transport's receive callback, synchronously: bytes
become packets, ACKs complete the command that waits for them, and SAMPLES go to
``on_samples`` with no queue and no await in between. Liveness is watched by one
timer that fires when the link has been quiet for too long and is only moved,
not re-created, while packets keep coming.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.clock import now_s
from drivers.transport import SerialTransport
from firmware_bridge import messages as m
from firmware_bridge.ptb1 import FrameReceiver, encode_frame


class BridgeError(Exception):
    """Base of transducer-bridge errors."""


class BridgeTimeout(BridgeError, TimeoutError):
    pass


class BridgeLinkLost(BridgeError):
    pass


class ProtocolMismatch(BridgeError):
    pass


class ImplausibleBridge(BridgeError):
    """The bridge's HELLO describes a scale no transducer has (a corrupt or wrong
    firmware): refused at the handshake, before a single sample is taken."""


class BridgeRefused(BridgeError):
    def __init__(self, command: str, result: m.AckResult) -> None:
        super().__init__(f"bridge refused {command}: {result.name}")
        self.command = command
        self.result = result


class InterlockReleaseRefused(BridgeRefused):
    """The bridge keeps the interlock asserted: its cause (pressure, sensor fault) remains."""


@dataclass
class LinkStats:
    packets: int = 0
    samples: int = 0
    lost_samples: int = 0
    rx_errors: int = 0
    malformed: int = 0
    unknown: int = 0
    stray_acks: int = 0
    stale_events: int = 0
    command_retries: int = 0  # commands sent again after a lost frame or ACK
    listener_errors: int = 0  # sample or event listeners that raised (isolated, alarmed)
    last_rtt_s: float = 0.0
    min_rtt_s: float = float("inf")


SamplesHandler = Callable[[bytes, float], None]
PacketHandler = Callable[[m.DeviceMessage, float], None]
PONG = struct.Struct("<II")


class TransducerLink:
    """One PTB/1 session over an open transport."""

    def __init__(self, on_samples: SamplesHandler, on_message: PacketHandler) -> None:
        self.transport: SerialTransport | None = None
        self.stats = LinkStats()
        self._rx = FrameReceiver()
        self._seq = 0
        self._on_samples = on_samples
        self._on_message = on_message
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._hello_waiters: list[asyncio.Future[m.Hello]] = []
        self._pings: dict[int, float] = {}
        self._pong_waiters: dict[int, asyncio.Future[tuple[float, float, int]]] = {}
        self._nonces = itertools.count(1)
        self.on_pong: Callable[[float, float, int], None] | None = None

    # ------------------------------------------------------------ receive (sync)
    def on_bytes(self, data: bytes, t_rx_s: float) -> None:
        rx = self._rx
        for ptype, _seq, payload in rx.feed(data):
            self.stats.packets += 1
            if ptype == m.DeviceType.SAMPLES:
                self._on_samples(payload, t_rx_s)
            else:
                self._dispatch(m.decode_device(ptype, payload), t_rx_s)
        self.stats.rx_errors = rx.rx_errors

    def _dispatch(self, msg: m.DeviceMessage, t_rx_s: float) -> None:
        if isinstance(msg, m.Ack):
            future = self._pending.pop(msg.ack_seq, None)
            if future is None or future.done():
                self.stats.stray_acks += 1
            else:
                future.set_result(int(msg.result))
            return
        if isinstance(msg, m.Pong):
            self._on_pong(msg, t_rx_s)
            return
        if isinstance(msg, m.Hello) and self._hello_waiters:
            for waiter in self._hello_waiters:
                if not waiter.done():
                    waiter.set_result(msg)
            self._hello_waiters.clear()
            return
        if isinstance(msg, m.Malformed):
            if msg.ptype in set(m.DeviceType):
                self.stats.malformed += 1
            else:
                self.stats.unknown += 1
            return
        self._on_message(msg, t_rx_s)

    def _on_pong(self, pong: m.Pong, t_rx_s: float) -> None:
        sent = self._pings.pop(pong.nonce, None)
        if sent is None:
            return
        rtt = t_rx_s - sent
        self.stats.last_rtt_s = rtt
        self.stats.min_rtt_s = min(self.stats.min_rtt_s, rtt)
        if self.on_pong is not None:
            self.on_pong(sent, t_rx_s, pong.t_us)
        waiter = self._pong_waiters.pop(pong.nonce, None)
        if waiter is not None and not waiter.done():
            waiter.set_result((sent, t_rx_s, pong.t_us))

    # ------------------------------------------------------------ send
    def send_nowait(self, command: tuple[int, bytes]) -> int:
        """Frame and hand to the OS at once; returns the packet's seq."""
        if self.transport is None or not self.transport.is_open:
            raise BridgeLinkLost("the bridge link is closed")
        seq = self._seq
        self._seq = (seq + 1) & 0xFF
        self.transport.write_nowait(encode_frame(command[0], seq, command[1]))
        return seq

    async def command(
        self, name: str, command: tuple[int, bytes], timeout_s: float, attempts: int = 3
    ) -> None:
        """Send and wait for the ACK; a refusal raises :class:`BridgeRefused`. Every PTB/1
        host command is idempotent, so one whose frame or ACK line noise took is sent again
        (``attempts`` in all) before ``BridgeTimeout``."""
        for attempt in range(attempts):
            try:
                await self._command_once(name, command, timeout_s)
                return
            except BridgeTimeout:
                if attempt == attempts - 1:
                    raise
                self.stats.command_retries += 1

    async def _command_once(self, name: str, command: tuple[int, bytes], timeout_s: float) -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        seq = self.send_nowait(command)
        self._pending[seq] = future
        try:
            async with asyncio.timeout(timeout_s):
                result = await future
        except TimeoutError:
            raise BridgeTimeout(f"no ACK from the bridge for {name} in {timeout_s:.3f} s") from None
        finally:
            self._pending.pop(seq, None)
        if result != m.AckResult.OK:
            ack = m.AckResult(result)
            if name == "INTERLOCK release" and ack is m.AckResult.BAD_STATE:
                raise InterlockReleaseRefused(name, ack)
            raise BridgeRefused(name, ack)

    async def hello(self, timeout_s: float) -> m.Hello:
        future: asyncio.Future[m.Hello] = asyncio.get_running_loop().create_future()
        self._hello_waiters.append(future)
        self.send_nowait(m.hello_request())
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise BridgeTimeout(f"no HELLO from the bridge in {timeout_s:.3f} s") from None
        finally:
            if future in self._hello_waiters:
                self._hello_waiters.remove(future)

    def ping_nowait(self) -> int:
        """Send a PING (it also feeds the bridge watchdog); the PONG feeds the clock sync."""
        nonce = next(self._nonces) & 0xFFFFFFFF
        if len(self._pings) > 64:  # PONGs that never came
            self._pings.clear()
        self._pings[nonce] = now_s()
        self.send_nowait(m.ping(nonce))
        return nonce

    async def ping(self, timeout_s: float) -> tuple[float, float, int]:
        """Round trip: (sent, received, device t_us)."""
        future: asyncio.Future[tuple[float, float, int]] = (
            asyncio.get_running_loop().create_future()
        )
        nonce = self.ping_nowait()
        self._pong_waiters[nonce] = future
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise BridgeTimeout(f"no PONG from the bridge in {timeout_s:.3f} s") from None
        finally:
            self._pong_waiters.pop(nonce, None)

    def fail_pending(self, reason: str) -> None:
        waiters: list[asyncio.Future[Any]] = [
            *self._pending.values(),
            *self._hello_waiters,
            *self._pong_waiters.values(),
        ]
        for future in waiters:
            if not future.done():
                future.set_exception(BridgeLinkLost(reason))
        self._pending.clear()
        self._hello_waiters.clear()
        self._pong_waiters.clear()
