"""In-process serial ports (``memory://NAME``): a device and a driver joined by the loop.

A pseudo-terminal carries bytes through the kernel, whose line discipline hands them on
in its own time; on a virtual clock that time does not exist, and the loop would jump
past bytes still in flight. A memory port hands each write to the other end in the next
loop iteration instead (``call_soon``), in order, so the same drivers and emulators run
unchanged and deterministically on a virtual clock. Used by the simulator's benchmarks
and closed-loop tests; real devices and the HIL tests use ptys and serial ports.

The device end (``MemoryEndpoint``) is created by an emulator and *plugged* under its
name; ``open_serial("memory://NAME")`` connects a driver to it. Unplugging fails the
driver's transport as pulling a USB adapter does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from drivers.clock import now_s

SCHEME = "memory://"
_PLUGGED: dict[str, MemoryEndpoint] = {}


class MemoryPortError(OSError):
    """No device is plugged under that name."""


class MemoryEndpoint:
    """The device side of a memory port: what an emulator reads and writes."""

    def __init__(self, url: str, on_bytes: Callable[[bytes, float], None]) -> None:
        if not url.startswith(SCHEME):
            raise ValueError(f"a memory port's name starts with {SCHEME}: {url!r}")
        self.url = url
        self.on_bytes = on_bytes
        self._host: _HostTransport | None = None
        self.dropped_tx_bytes = 0

    @property
    def device(self) -> str:
        return self.url

    @property
    def plugged(self) -> bool:
        return _PLUGGED.get(self.url) is self

    def plug(self) -> None:
        if _PLUGGED.get(self.url) not in (None, self):
            raise MemoryPortError(f"{self.url} is already plugged by another device")
        _PLUGGED[self.url] = self

    def unplug(self) -> None:
        if _PLUGGED.get(self.url) is self:
            del _PLUGGED[self.url]
        host, self._host = self._host, None
        if host is not None:
            host.lose(OSError(f"{self.url}: device unplugged"))

    def write(self, data: bytes) -> None:
        """Bytes to the driver, delivered in the next loop iteration; dropped if none."""
        if self._host is None or not self.plugged:
            self.dropped_tx_bytes += len(data)
            return
        self._host.deliver(bytes(data))

    def _from_host(self, data: bytes) -> None:
        if self.plugged:
            self.on_bytes(data, now_s())

    def _attach(self, host: _HostTransport) -> None:
        if self._host is not None:
            raise MemoryPortError(f"{self.url} is already open")
        self._host = host

    def _detach(self, host: _HostTransport) -> None:
        if self._host is host:
            self._host = None


class _HostTransport(asyncio.Transport):
    """The driver side: an asyncio transport whose peer is a ``MemoryEndpoint``."""

    def __init__(self, endpoint: MemoryEndpoint, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._endpoint: MemoryEndpoint | None = endpoint
        self._protocol = protocol
        self._closing = False

    def deliver(self, data: bytes) -> None:
        self._loop.call_soon(self._receive, data)

    def _receive(self, data: bytes) -> None:
        if not self._closing:
            self._protocol.data_received(data)

    def write(self, data: Any) -> None:
        if self._closing or self._endpoint is None:
            raise ConnectionResetError("memory port closed")
        self._loop.call_soon(self._endpoint._from_host, bytes(data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._endpoint is not None:
            self._endpoint._detach(self)
        self._endpoint = None
        self._loop.call_soon(self._protocol.connection_lost, None)

    def lose(self, exc: Exception) -> None:
        """The device went away: the driver sees its port fail."""
        if self._closing:
            return
        self._closing = True
        self._endpoint = None
        self._loop.call_soon(self._protocol.connection_lost, exc)

    def get_write_buffer_size(self) -> int:
        return 0


def connect(url: str, protocol: asyncio.Protocol) -> asyncio.Transport:
    """Open the memory port ``url`` for ``protocol`` (the driver side)."""
    endpoint = _PLUGGED.get(url)
    if endpoint is None:
        raise MemoryPortError(f"no device plugged at {url}")
    transport = _HostTransport(endpoint, protocol)
    endpoint._attach(transport)
    protocol.connection_made(transport)
    return transport
