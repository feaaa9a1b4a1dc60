"""Read operator answers from stdin without blocking the event loop."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from controller.calibration.transducer import (
    SETTLE_SAMPLES,
    CalibrationError,
    StillReading,
    collect_raw,
    still_reading,
)
from drivers.transducer import TransducerBridge


class Prompter:
    """Line input on the event loop: a pipe or a terminal is read as a stream, so
    Ctrl-C and timers keep working while the program waits for an answer."""

    def __init__(self) -> None:
        self._reader: asyncio.StreamReader | None = None

    async def _stream(self) -> asyncio.StreamReader:
        if self._reader is None:
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
            self._reader = reader
        return self._reader

    async def ask(self, question: str) -> str | None:
        """Print ``question`` and return the answer without its newline; None at end of input."""
        print(question, end="", flush=True)
        try:
            reader = await self._stream()
        except (ValueError, OSError):  # stdin is a regular file: read it in a thread
            line: str = await asyncio.to_thread(sys.stdin.readline)
        else:
            line = (await reader.readline()).decode("utf-8", "replace")
        if not line:
            print()
            return None
        return line.rstrip("\r\n")


async def reference_points(
    prompter: Prompter, bridge: TransducerBridge, gain_counts_per_mmhg: float, samples: int
) -> AsyncIterator[tuple[float, StillReading]]:
    """Ask for manometer readings until a blank line; yield each with a still reading of
    the transducer (a point that moved while it was read is refused and asked again)."""
    taken = 0
    while True:
        answer = await prompter.ask(
            f"point {taken + 1}: reference pressure in mmHg (blank line to finish): "
        )
        if not answer:
            return
        try:
            reference = float(answer)
        except ValueError:
            print(f"  '{answer}' is not a number in mmHg; try again")
            continue
        raw = await collect_raw(bridge, SETTLE_SAMPLES + samples, timeout_s=5 + samples / 500)
        try:
            reading = still_reading(raw[SETTLE_SAMPLES:], gain_counts_per_mmhg)
        except CalibrationError as exc:
            print(f"  {exc}; this point was not taken, set it again")
            continue
        taken += 1
        yield reference, reading
