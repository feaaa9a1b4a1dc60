"""uvicorn, with an event for "listening now" and a plain exit on SIGINT/SIGTERM.

uvicorn itself offers only a ``started`` flag, and after a graceful shutdown re-raises the
signal that caused it, so the process would end "killed by SIGTERM". Here the signal asks
for the same graceful shutdown (the lifespan stops any infusion first) and the process
then exits with its own status; ``stop_signal`` keeps which signal it was, so the command
can say why it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Generator
from types import FrameType
from typing import Any

import uvicorn


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()
        self.stop_signal: signal.Signals | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stop_signal = signal.Signals(sig)
        super().handle_exit(sig, frame)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # served from a thread (the browser tests): its owner stops it
            return
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    @property
    def port(self) -> int:
        port: int = self.servers[0].sockets[0].getsockname()[1]
        return port
