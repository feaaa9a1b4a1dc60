"""A scripted serial peer on a pty, in the manner of PyMeasure's ``expected_protocol``.

The test states the exact bytes the driver must send and the exact bytes the
device answers; anything else fails the test.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from simulator.pty_link import PtyLink


class ScriptedPeer:
    def __init__(self, path: Path, script: list[tuple[bytes, bytes]]) -> None:
        self.script = list(script)
        self.received = bytearray()
        self.unexpected: list[bytes] = []
        self.done = asyncio.Event()
        self.link = PtyLink(path, self._on_bytes)
        if not self.script:
            self.done.set()

    def __enter__(self) -> ScriptedPeer:
        self.link.plug()
        return self

    def __exit__(self, *exc: object) -> None:
        self.link.unplug()

    @property
    def path(self) -> str:
        return str(self.link.link_path)

    def _on_bytes(self, data: bytes, t: float) -> None:
        self.received += data
        while self.script:
            expected, reply = self.script[0]
            if len(self.received) < len(expected):
                return
            got = bytes(self.received[: len(expected)])
            del self.received[: len(expected)]
            if got != expected:
                self.unexpected.append(got)
                self.done.set()
                return
            self.script.pop(0)
            if reply:
                self.link.write(reply)
        if not self.script:
            self.done.set()

    def check(self) -> None:
        assert not self.unexpected, (
            f"driver sent {self.unexpected!r}, script wanted {self.script[:1]!r}"
        )
        assert not self.script, f"driver never sent {self.script[0][0]!r}"
