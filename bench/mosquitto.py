"""A real Mosquitto broker for the tests, on a free loopback port with its own config."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
READY = b"running"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Broker:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\n"  # unbuffered, unlike stdout on a pipe
        )
        self.process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start it and return once it says it is running (its own log line)."""
        process = await asyncio.create_subprocess_exec(
            MOSQUITTO, "-c", str(self.config), stderr=asyncio.subprocess.PIPE
        )
        log = process.stderr
        assert log is not None
        try:
            async with asyncio.timeout(10):
                while READY not in (line := await log.readline()):
                    if not line:
                        raise RuntimeError("mosquitto exited before it was running")
        except BaseException:
            process.kill()  # never leave a broker behind
            await process.wait()
            raise
        self.process = process
        self.log: list[bytes] = []
        self._drain = asyncio.create_task(self._keep_reading(log))

    async def _keep_reading(self, stdout: asyncio.StreamReader) -> None:
        """Its log keeps coming; a pipe nobody reads would block the broker."""
        while line := await stdout.readline():
            self.log.append(line)

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
                self.process.terminate()
        await self.process.wait()
        if self._drain is not None:
            await self._drain
        self.process = None

    def pause(self) -> None:
        """The broker stops reading (SIGSTOP): its socket buffers fill, nothing is refused."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    assert shutil.which(MOSQUITTO), "Mosquitto is needed (make test installs it)"
    running = Broker(tmp_path)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
