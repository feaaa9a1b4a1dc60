"""Waiting on bridge events and samples without sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from drivers.transducer import BridgeEvent, TransducerBridge


class Recorder:
    """Collects samples and events from a bridge and wakes waiters when they arrive."""

    def __init__(self, bridge: TransducerBridge) -> None:
        self.samples: list[tuple[int, float, float, int]] = []
        self.events: list[BridgeEvent] = []
        self.arrivals: list[float] = []
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.remove = [
            bridge.add_sample_listener(self._on_sample),
            bridge.add_event_listener(self._on_event),
        ]

    def _on_sample(self, index: int, t_s: float, pressure: float, raw: int) -> None:
        self.samples.append((index, t_s, pressure, raw))
        self.arrivals.append(self._loop.time())
        self._changed.set()

    def _on_event(self, event: BridgeEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def until(self, done: Callable[[], bool], timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    async def event(self, kind: str, timeout_s: float = 5.0, after: int = 0) -> BridgeEvent:
        def found() -> list[BridgeEvent]:
            return [e for e in self.events[after:] if e.kind == kind]

        await self.until(lambda: bool(found()), timeout_s)
        return found()[0]

    async def more_samples(self, n: int, timeout_s: float = 5.0) -> None:
        target = len(self.samples) + n
        await self.until(lambda: len(self.samples) >= target, timeout_s)
