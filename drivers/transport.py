"""Async serial transport: the one module that touches pyserial.

Everything above it sees bytes, timeouts and one exception type per failure,
never a pyserial object. Received bytes go either into a buffer that the
``read_*`` coroutines consume or, when ``on_bytes`` is given, straight to a
synchronous callback (the control path of the transducer bridge must not pay
for a queue hop or an ``await``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import serial
import serial.tools.list_ports
import serial_asyncio_fast

from drivers import memory_port
from drivers.clock import now_s

Parity = Literal["N", "E", "O", "M", "S"]


class TransportError(Exception):
    """Base of transport failures."""


class PortOpenError(TransportError):
    """A port could not be opened; the message is one line naming the port."""


class LinkClosed(TransportError):
    """The port went away (device unplugged, pty closed) or was closed."""


class ReadTimeout(TransportError, TimeoutError):
    """Nothing matching arrived in time. ``partial`` holds what did arrive."""

    def __init__(self, message: str, partial: bytes = b"") -> None:
        super().__init__(message)
        self.partial = partial


@dataclass(frozen=True, slots=True)
class PortInfo:
    device: str
    description: str
    hwid: str


def list_ports() -> list[PortInfo]:
    """Serial ports the operating system knows about."""
    return [
        PortInfo(p.device, p.description or "", p.hwid or "")
        for p in sorted(serial.tools.list_ports.comports(), key=lambda p: p.device)
    ]


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: SerialTransport) -> None:
        self._owner = owner

    def data_received(self, data: bytes) -> None:
        self._owner._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._on_lost(exc)

    def pause_writing(self) -> None:
        self._owner._writable.clear()

    def resume_writing(self) -> None:
        self._owner._writable.set()


class SerialTransport:
    """One open serial port. Create with :func:`open_serial`."""

    def __init__(
        self,
        url: str,
        on_bytes: Callable[[bytes, float], None] | None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self._on_bytes = on_bytes
        self._on_lost_cb = on_lost
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._closed = asyncio.get_running_loop().create_future()
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost_reason: str | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.last_rx_mono_s = 0.0

    # ------------------------------------------------------------------ events
    def _on_data(self, data: bytes) -> None:
        now = now_s()
        self.bytes_in += len(data)
        self.last_rx_mono_s = now
        if self._on_bytes is not None:
            self._on_bytes(data, now)
            return
        self._buffer += data
        self._wake()

    def _on_lost(self, exc: Exception | None) -> None:
        self._lost_reason = str(exc) if exc else "closed"
        self._transport = None
        self._writable.set()
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake()
        if self._on_lost_cb is not None:
            self._on_lost_cb(self._lost_reason)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # ------------------------------------------------------------------ state
    def input_pending(self) -> bool:
        """True when the OS holds bytes for us that this process has not read yet."""
        port = getattr(self._transport, "serial", None)
        try:
            return bool(port is not None and port.in_waiting)
        except (OSError, serial.SerialException):
            return False

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def _check_open(self) -> asyncio.Transport:
        if self._transport is None or self._transport.is_closing():
            raise LinkClosed(f"{self.url}: link closed ({self._lost_reason or 'closed'})")
        return self._transport

    # ------------------------------------------------------------------ writing
    def write_nowait(self, data: bytes) -> None:
        """Hand bytes to the OS at once (no await): the stop path uses this."""
        self._check_open().write(data)
        self.bytes_out += len(data)

    async def write(self, data: bytes) -> None:
        """Write, and wait while the transport's buffer is above its high-water mark."""
        self.write_nowait(data)
        await self._writable.wait()
        self._check_open()

    # ------------------------------------------------------------------ reading
    def discard_input(self) -> bytes:
        """Drop and return whatever has been received and not read."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    async def _wait_for(self, found: Callable[[], int], timeout_s: float, what: str) -> bytes:
        """Wait until ``found()`` returns a length > 0, then take that many bytes."""
        deadline = now_s() + timeout_s
        while True:
            n = found()
            if n > 0:
                chunk = bytes(self._buffer[:n])
                del self._buffer[:n]
                return chunk
            self._check_open()
            remaining = deadline - now_s()
            if remaining <= 0:
                raise ReadTimeout(
                    f"{self.url}: no {what} within {timeout_s * 1000:.0f} ms", bytes(self._buffer)
                )
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(remaining):
                    await self._waiter
            except TimeoutError:
                pass
            finally:
                self._waiter = None

    async def read_exactly(self, n: int, timeout_s: float) -> bytes:
        return await self._wait_for(
            lambda: n if len(self._buffer) >= n else 0, timeout_s, f"{n} bytes"
        )

    async def read_until(self, delimiter: bytes, timeout_s: float) -> bytes:
        """Bytes up to and including ``delimiter``."""

        def found() -> int:
            i = self._buffer.find(delimiter)
            return i + len(delimiter) if i >= 0 else 0

        return await self._wait_for(found, timeout_s, f"{delimiter!r}")

    async def read_frame(self, start: int, end: int, timeout_s: float) -> bytes:
        """One frame from ``start`` to ``end`` byte; bytes before ``start`` are dropped."""

        def found() -> int:
            i = self._buffer.find(start)
            if i < 0:
                self._buffer.clear()
                return 0
            del self._buffer[:i]
            j = self._buffer.find(end, 1)
            return j + 1 if j >= 0 else 0

        return await self._wait_for(found, timeout_s, "frame")

    async def read_any(self, timeout_s: float) -> bytes:
        """Whatever has arrived, waiting up to ``timeout_s`` for at least one byte."""
        return await self._wait_for(lambda: len(self._buffer), timeout_s, "byte")

    # ------------------------------------------------------------------ closing
    async def close(self) -> None:
        """Close the port and wait until the OS handle is released."""
        if self._transport is not None:
            self._transport.close()
        await self._closed


async def open_serial(
    url: str,
    baud: int = 19200,
    *,
    parity: Parity = "N",
    stop_bits: float = 1,
    on_bytes: Callable[[bytes, float], None] | None = None,
    on_lost: Callable[[str], None] | None = None,
    timeout_s: float = 3.0,
) -> SerialTransport:
    """Open a device path or pyserial URL (``loop://``, ``socket://``, ``rfc2217://``), or
    an in-process ``memory://`` port (``drivers.memory_port``).

    Raises :class:`PortOpenError` with a one-line reason naming the port.
    """
    link = SerialTransport(url, on_bytes, on_lost)
    if url.startswith(memory_port.SCHEME):
        try:
            link._transport = memory_port.connect(url, _Protocol(link))
        except OSError as exc:
            raise PortOpenError(f"cannot open {url}: {exc}") from exc
        return link
    loop = asyncio.get_running_loop()
    extra: dict[str, object] = {} if "://" in url else {"exclusive": True}
    try:
        async with asyncio.timeout(timeout_s):
            transport, _ = await serial_asyncio_fast.create_serial_connection(
                loop,
                lambda: _Protocol(link),
                url,
                baudrate=baud,
                parity=parity,
                stopbits=stop_bits,
                bytesize=8,
                **extra,
            )
    except TimeoutError as exc:
        raise PortOpenError(f"cannot open {url}: no answer from the OS in {timeout_s} s") from exc
    except (serial.SerialException, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PortOpenError(f"cannot open {url}: {reason}") from exc
    link._transport = transport
    return link
