"""NE-1000 link layer: framing in both modes, reply matching and the heartbeat.

Replies carry no command identifier, so they are matched to commands in the
order the commands were sent (a FIFO of futures). Normal commands go one at a
time; only the emergency stop is written at once even while another command
is in flight, and its reply then simply queues behind the earlier one.

Received bytes are parsed synchronously in the transport's callback, so a reply
resolves its future with no task in between. The safe-mode heartbeat is a
timer callback, not a task: a loop that hangs stops feeding the pump, and the
pump's own timeout then stops it (that is the point of safe mode).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable

from drivers.clock import now_s
from drivers.ne1000_protocol import (
    ETX,
    STX,
    MalformedReply,
    PumpError,
    PumpReply,
    decode_safe,
    encode_basic,
    encode_safe,
    parse_reply,
)
from drivers.transport import LinkClosed, SerialTransport

log = logging.getLogger(__name__)

MAX_PACKET = 64
# A safe-mode length byte is below 0x20 for every reply the pump sends (its
# replies are under 28 characters); a basic reply's second byte is an ASCII
# address digit. This tells the two framings apart without trusting our idea
# of the pump's mode, which a power cycle or a crashed host may have changed.
_SAFE_LENGTH_MAX = 0x1F
# STX, length, at least one data byte, CRC (2), ETX: a length byte under 5 is no frame (a
# stray STX followed by a 0x00 once swallowed the next 64 bytes, replies and all)
_SAFE_LENGTH_MIN = 5


class PumpTimeout(PumpError, TimeoutError):
    """The pump did not answer in time."""


class PumpLinkLost(PumpError):
    """The serial link to the pump went away."""


class _ReplyParser:
    """Turns bytes into reply strings; counts what it had to throw away."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.stray_bytes = 0
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[str | MalformedReply]:
        out: list[str | MalformedReply] = []
        buf = self._buf
        for byte in data:
            if not buf:
                if byte == STX:
                    buf.append(byte)
                else:
                    self.stray_bytes += 1
                continue
            buf.append(byte)
            safe = buf[1] <= _SAFE_LENGTH_MAX
            if safe and buf[1] < _SAFE_LENGTH_MIN:
                self.bad_frames += 1  # not a frame: look for the next STX from this byte
                buf.clear()
                if byte == STX:
                    buf.append(byte)
            elif safe and len(buf) == buf[1] + 1:
                out.append(self._take_safe())
            elif not safe and byte == ETX:
                out.append(bytes(buf[1:-1]).decode("ascii", "replace"))
                buf.clear()
            elif len(buf) > MAX_PACKET:
                self.bad_frames += 1
                out.append(MalformedReply(f"overlong frame {bytes(buf[:16])!r}..."))
                buf.clear()
        return out

    def _take_safe(self) -> str | MalformedReply:
        packet = bytes(self._buf)
        self._buf.clear()
        try:
            return decode_safe(packet).decode("ascii", "replace")
        except MalformedReply as exc:
            self.bad_frames += 1
            return exc

    def reset(self) -> None:
        self._buf.clear()


class NE1000Link:
    """Sends commands and matches replies. Owns no task; see the module docstring."""

    def __init__(
        self,
        transport: SerialTransport,
        address: int,
        on_unsolicited: Callable[[PumpReply], None],
    ) -> None:
        self.transport = transport
        self.address = address
        self.safe_mode = False
        self._on_unsolicited = on_unsolicited
        self._parser = _ReplyParser()
        self._pending: collections.deque[asyncio.Future[PumpReply]] = collections.deque()
        self._lost: str | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self._heartbeat_interval_s = 0.0
        self.last_tx_mono_s = 0.0
        self.last_reply_mono_s = 0.0
        self.stray_replies = 0
        self.heartbeats_sent = 0
        self.missed_heartbeats = 0
        self._beat_fut: asyncio.Future[PumpReply] | None = None

    # ------------------------------------------------------------------ receive
    def on_bytes(self, data: bytes, t_mono_s: float) -> None:
        for item in self._parser.feed(data):
            if isinstance(item, MalformedReply):
                self._deliver_error(item)
                continue
            try:
                reply = parse_reply(item, t_mono_s)
            except MalformedReply as exc:
                self._deliver_error(exc)
                continue
            self.last_reply_mono_s = t_mono_s
            if reply.address != self.address:  # line noise, or another pump on the network
                self._deliver_error(
                    MalformedReply(f"reply from pump address {reply.address}, not {self.address}")
                )
                continue
            self._deliver(reply)

    def _deliver(self, reply: PumpReply) -> None:
        while self._pending and self._pending[0].done():
            self._pending.popleft()
        if self._pending:
            self._pending.popleft().set_result(reply)
            if reply.alarm is not None:
                self._on_unsolicited(reply)
            return
        if reply.alarm is None:
            self.stray_replies += 1
            log.debug("stray pump reply %r dropped", reply)
        self._on_unsolicited(reply)

    def _deliver_error(self, exc: MalformedReply) -> None:
        while self._pending and self._pending[0].done():
            self._pending.popleft()
        if self._pending:
            self._pending.popleft().set_exception(exc)

    def on_lost(self, reason: str) -> None:
        self._lost = reason
        self.cancel_heartbeat()
        error = PumpLinkLost(f"{self.transport.url}: link lost ({reason})")
        while self._pending:
            fut = self._pending.popleft()
            if not fut.done():
                fut.set_exception(error)

    # ------------------------------------------------------------------ send
    @property
    def in_flight(self) -> int:
        return sum(1 for f in self._pending if not f.done())

    def frame(self, command: str, *, safe: bool | None = None) -> bytes:
        text = f"{self.address}{command}"
        use_safe = self.safe_mode if safe is None else safe
        return encode_safe(text.encode("ascii")) if use_safe else encode_basic(text)

    def send_nowait(self, command: str, *, safe: bool | None = None) -> asyncio.Future[PumpReply]:
        """Write the command now and return the future of its reply."""
        if self._lost is not None:
            raise PumpLinkLost(f"{self.transport.url}: link lost ({self._lost})")
        fut: asyncio.Future[PumpReply] = asyncio.get_running_loop().create_future()
        # A reply nobody waits for any more (timed out, forgotten, or a stop path's STP) may
        # still fail when the link closes; that is not news, so it is marked as seen.
        fut.add_done_callback(_mark_seen)
        try:
            self.transport.write_nowait(self.frame(command, safe=safe))
        except LinkClosed as closed:
            # closing (unplugged, or closed at shutdown) before its loss was reported: a
            # pump error like any other, so a stop path that tries the interlock next does
            fut.cancel()
            raise PumpLinkLost(f"{self.transport.url}: {closed}") from closed
        self.last_tx_mono_s = now_s()
        self._pending.append(fut)
        return fut

    async def exchange(
        self, command: str, timeout_s: float, *, safe: bool | None = None
    ) -> PumpReply:
        fut = self.send_nowait(command, safe=safe)
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(fut)
        except TimeoutError:
            self.forget(fut)
            raise PumpTimeout(
                f"pump at {self.transport.url} did not answer {command!r} "
                f"within {timeout_s * 1000:.0f} ms"
            ) from None

    def forget(self, fut: asyncio.Future[PumpReply]) -> None:
        """Give up on a reply: a late one must not be taken for the next command's."""
        if not fut.done():
            fut.cancel()
        self.resync()

    def resync(self) -> None:
        """Drop every expectation and half-read frame (after a timeout or garbage)."""
        for fut in self._pending:
            if not fut.done():
                fut.cancel()
        self._pending.clear()
        self._parser.reset()

    # ------------------------------------------------------------------ heartbeat
    def start_heartbeat(self, pump_timeout_s: int) -> None:
        """Keep the pump's safe-mode timer fed while this process is healthy."""
        self.cancel_heartbeat()
        self._heartbeat_interval_s = pump_timeout_s / 3.0
        self._schedule_heartbeat()

    def cancel_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    def _schedule_heartbeat(self) -> None:
        self._heartbeat = asyncio.get_running_loop().call_later(
            self._heartbeat_interval_s / 2.0, self._beat
        )

    def _beat(self) -> None:
        now = now_s()
        beat = self._beat_fut
        if (
            beat is not None
            and not beat.done()
            and now - self.last_tx_mono_s >= self._heartbeat_interval_s
        ):
            self.missed_heartbeats += 1
            beat.cancel()
            if not self.in_flight:
                self.resync()
        idle = now - self.last_tx_mono_s >= self._heartbeat_interval_s
        if idle and not self.in_flight and self._lost is None:
            self._beat_fut = self.send_nowait("")
            self._beat_fut.add_done_callback(_ignore_result)
            self.heartbeats_sent += 1
        self._schedule_heartbeat()

    @property
    def stray_bytes(self) -> int:
        return self._parser.stray_bytes

    @property
    def bad_frames(self) -> int:
        return self._parser.bad_frames


def _ignore_result(fut: asyncio.Future[PumpReply]) -> None:
    if not fut.cancelled():
        fut.exception()


def _mark_seen(future: asyncio.Future[PumpReply]) -> None:
    if not future.cancelled():
        future.exception()
