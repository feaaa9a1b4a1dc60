"""An asyncio event loop on a virtual clock: when nothing is ready, time jumps to the next timer.

The real ``Controller``, drivers and emulators all read time from their loop
(``drivers.clock.now_s``) and wait with loop timers, so on this loop a minute-long
injection runs in the few seconds of CPU its callbacks cost, and the same seed gives the
same run. Bytes between driver and emulator must travel through memory ports
(``memory://``), which deliver on the loop itself; a pseudo-terminal's kernel buffer has
no virtual time and would be overtaken.

Work handed to an executor (the recorder's SQLite writer, ``asyncio.to_thread``) runs
inline, at once: a worker thread would run in real time while the virtual clock raced on
with the loop's timers (and, holding the GIL, the loop would starve it), so a record
write would cost a random number of virtual seconds. Inline it costs none, and a run is
the same every time.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar, TypeVarTuple

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
START_S = 1000.0  # an arbitrary origin; far enough from 0 that "never" (0.0) stays in the past


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, clock: VirtualClockLoop) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        events: list[tuple[Any, int]] = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            # no timer at all: only another thread (the recorder, to_thread) can wake us
            blocked: list[tuple[Any, int]] = super().select(None)
            return blocked
        self._clock.advance(timeout)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """``time()`` is virtual; it moves only when the loop would otherwise wait."""

    def __init__(self, start_s: float = START_S) -> None:
        self._virtual_now_s = start_s
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self._virtual_now_s

    def advance(self, seconds: float) -> None:
        self._virtual_now_s += max(0.0, seconds)

    def run_in_executor(
        self, executor: Executor | None, func: Callable[[*Ts], T], *args: *Ts
    ) -> asyncio.Future[T]:
        """Run ``func`` now, on the loop's thread: instant in virtual time."""
        future: asyncio.Future[T] = self.create_future()
        try:
            future.set_result(func(*args))
        except BaseException as exc:  # delivered to the awaiting code, as an executor would
            future.set_exception(exc)
        return future


def run_virtual(main: Callable[[], Awaitable[T]], start_s: float = START_S) -> T:
    """``asyncio.run`` on a fresh virtual-clock loop."""
    with asyncio.Runner(loop_factory=lambda: VirtualClockLoop(start_s)) as runner:
        return runner.run(main())  # type: ignore[arg-type]
