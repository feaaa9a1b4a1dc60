"""A pseudo-terminal that an emulator serves, symlinked at a stable path.

The emulator keeps the slave side open itself so that the master never sees
EIO while no client is attached; a client opens the symlink like any serial
device. ``unplug()`` closes both sides (the client sees its port fail, as when
a USB adapter is pulled) and ``plug()`` makes a new pty at the same path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable
from pathlib import Path

from drivers.clock import now_s


class PtyLink:
    def __init__(self, link_path: str | Path, on_bytes: Callable[[bytes, float], None]) -> None:
        self.link_path = Path(link_path)
        self.on_bytes = on_bytes
        self._master: int | None = None
        self._slave: int | None = None
        self.dropped_tx_bytes = 0

    @property
    def device(self) -> str:
        """The real /dev/pts path behind the link."""
        return os.readlink(self.link_path)

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def plug(self) -> None:
        """Create the pty and the symlink, and start reading."""
        if self._master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.link_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link_path.with_name(self.link_path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.link_path)
        self._master, self._slave = master, slave
        asyncio.get_running_loop().add_reader(master, self._read_ready)

    def unplug(self) -> None:
        """Close the pty and remove the symlink."""
        if self._master is None:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()

    def write(self, data: bytes) -> None:
        """Send bytes to the client; what the pty cannot take is dropped and counted."""
        if self._master is None:
            self.dropped_tx_bytes += len(data)
            return
        try:
            n = os.write(self._master, data)
        except (BlockingIOError, OSError):
            n = 0
        self.dropped_tx_bytes += len(data) - n

    def _read_ready(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if data:
            self.on_bytes(data, now_s())
