"""A real server (Mosquitto, Orthanc) run for a test or a bench: started, awaited until its
own log says it is ready, its log drained so a full pipe never blocks it, and stopped.

One lifecycle for every server the tests start, so each starts its own instance the same
way and none is ever left behind: a start that fails kills the process before raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Sequence


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """``argv`` run until a log line holds ``ready``; the log is stderr, or stdout with
    stderr merged into it (``log_on_stdout``)."""

    def __init__(
        self, argv: Sequence[str], ready: bytes, *, timeout_s: float, log_on_stdout: bool = False
    ) -> None:
        self.argv, self.ready, self.timeout_s = list(argv), ready, timeout_s
        self.log_on_stdout = log_on_stdout
        self.process: asyncio.subprocess.Process | None = None
        self.log: list[bytes] = []
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start it and return once it says it is ready."""
        pipe = asyncio.subprocess.PIPE
        if self.log_on_stdout:
            process = await asyncio.create_subprocess_exec(
                *self.argv, stdout=pipe, stderr=asyncio.subprocess.STDOUT
            )
            log = process.stdout
        else:
            process = await asyncio.create_subprocess_exec(*self.argv, stderr=pipe)
            log = process.stderr
        assert log is not None
        name = self.argv[0].rsplit("/", 1)[-1]
        try:
            async with asyncio.timeout(self.timeout_s):
                while self.ready not in (line := await log.readline()):
                    self.log.append(line)
                    if not line:
                        said = b"".join(self.log).decode(errors="replace")
                        raise RuntimeError(f"{name} exited before it was ready: {said}")
        except BaseException:
            process.kill()  # never leave a server behind
            await process.wait()
            raise
        self.process = process
        self._drain = asyncio.create_task(self._keep_reading(log))

    async def _keep_reading(self, log: asyncio.StreamReader) -> None:
        """Its log keeps coming; a pipe nobody reads would block the server."""
        while line := await log.readline():
            self.log.append(line)

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)  # a paused server must hear SIGTERM
                self.process.terminate()
        await self.process.wait()
        if self._drain is not None:
            await self._drain
        self.process = None

    def pause(self) -> None:
        """The server stops reading (SIGSTOP): its socket buffers fill, nothing is refused."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
