"""A real Mosquitto broker for the tests, on a free loopback port with its own config."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.server_process import ServerProcess, free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
READY = b"running"

__all__ = ["Broker", "broker", "free_port"]


class Broker(ServerProcess):
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\n"  # unbuffered, unlike stdout on a pipe
        )
        super().__init__([MOSQUITTO, "-c", str(self.config)], READY, timeout_s=10.0)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    assert shutil.which(MOSQUITTO), "Mosquitto is needed (make test installs it)"
    running = Broker(tmp_path)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
