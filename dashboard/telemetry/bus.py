"""The telemetry bus: one producer, many clients, and the control path never waits.

Samples are appended to a batch by a bridge sample listener (one list append on the
control path). A loop timer closes the batch every 40 ms (25 messages a second) and
offers it to every client's bounded queue; a full queue loses its oldest batch, counted,
so a slow client never slows the controller or the other clients. State changes and
alarms go on a separate list per client that is never dropped: a client that cannot
take them is disconnected instead.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

BATCH_PERIOD_S = 0.04
CLIENT_BATCHES = 50  # two seconds of samples per client
CLIENT_EVENTS_MAX = 10_000


@dataclass(eq=False)
class Client:
    batches: deque[str] = field(default_factory=lambda: deque(maxlen=CLIENT_BATCHES))
    events: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped_batches: int = 0
    overflowed: bool = False

    def next_messages(self) -> list[str]:
        out = self.events + list(self.batches)
        self.events, self.batches = [], deque(maxlen=CLIENT_BATCHES)
        self.wake.clear()
        return out


class TelemetryBus:
    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self._t: list[float] = []
        self._p: list[float] = []
        self._handle: asyncio.TimerHandle | None = None
        self.batches_sent = 0
        self.samples_in = 0

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(BATCH_PERIOD_S, self._flush)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    # ------------------------------------------------------------ producers
    def add_sample(self, index: int, t_mono_s: float, pressure_mmhg: float, raw: int) -> None:
        """Bridge sample listener: two appends, nothing else."""
        self._t.append(t_mono_s)
        self._p.append(pressure_mmhg)

    def publish_event(self, kind: str, payload: dict[str, Any]) -> None:
        """State changes and alarms: every client gets every one, in order."""
        message = json.dumps({"type": kind, **payload})
        for client in list(self.clients):
            if len(client.events) >= CLIENT_EVENTS_MAX:
                client.overflowed = True
            else:
                client.events.append(message)
            client.wake.set()

    # ------------------------------------------------------------ the batch timer
    def _flush(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(BATCH_PERIOD_S, self._flush)
        if not self._t:
            return
        t, p = self._t, self._p
        self._t, self._p = [], []
        self.samples_in += len(t)
        message = json.dumps(
            {
                "type": "samples",
                "t0": t[0],
                "dt": (t[-1] - t[0]) / max(len(t) - 1, 1),
                "p": [round(x, 2) for x in p],
            }
        )
        self.batches_sent += 1
        for client in list(self.clients):
            if len(client.batches) == CLIENT_BATCHES:
                client.dropped_batches += 1
            client.batches.append(message)
            client.wake.set()

    def subscribe(self) -> Client:
        client = Client()
        self.clients.add(client)
        return client

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)
