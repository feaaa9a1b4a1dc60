"""Read operator answers from stdin without blocking the event loop."""

from __future__ import annotations

import asyncio
import sys


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
