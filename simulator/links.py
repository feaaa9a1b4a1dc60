"""Where an emulator serves its device: a pseudo-terminal, or an in-process memory port."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from drivers.memory_port import SCHEME, MemoryEndpoint
from simulator.pty_link import PtyLink


class DeviceLink(Protocol):
    """What an emulator needs of its serial line."""

    on_bytes: Callable[[bytes, float], None]  # what the host sent, and when

    @property
    def device(self) -> str:
        """What a host opens: the pty's /dev/pts path, or the memory port's URL."""
        ...

    @property
    def plugged(self) -> bool: ...

    def plug(self) -> None: ...

    def unplug(self) -> None: ...

    def write(self, data: bytes) -> None: ...


def device_link(where: str | Path, on_bytes: Callable[[bytes, float], None]) -> DeviceLink:
    """A pty symlinked at ``where``, or the memory port ``where`` if it is ``memory://...``."""
    if str(where).startswith(SCHEME):
        return MemoryEndpoint(str(where), on_bytes)
    return PtyLink(where, on_bytes)
