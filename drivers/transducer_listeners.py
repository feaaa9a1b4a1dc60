"""Who hears the bridge: sample and event listeners, each call isolated (Klipper's way).

A listener that raises is counted, logged (the first few times) and reported to
``on_error`` (the controller makes it a ``software_fault`` alarm); the other listeners
still run, and nothing is raised into the transport's receive callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from drivers.transducer_link import LinkStats
from drivers.transducer_types import BridgeEvent

log = logging.getLogger(__name__)
LOGGED_LISTENER_ERRORS = 20  # then only counted

SampleListener = Callable[[int, float, float, int], None]
"""``(index, t_mono_s, pressure_mmhg, raw)``, called once per sample, synchronously."""

EventListener = Callable[[BridgeEvent], None]

ErrorListener = Callable[[str, Exception, float], None]
"""``(listener's name, exception, host time)``."""


class Listeners:
    def __init__(self, stats: LinkStats) -> None:
        self.samples: list[SampleListener] = []
        self.events: list[EventListener] = []
        self.on_error: ErrorListener | None = None
        self._stats = stats

    def add_sample(self, listener: SampleListener) -> Callable[[], None]:
        self.samples.append(listener)
        return lambda: _discard(self.samples, listener)

    def add_event(self, listener: EventListener) -> Callable[[], None]:
        self.events.append(listener)
        return lambda: _discard(self.events, listener)

    def emit(self, event: BridgeEvent) -> None:
        for listener in list(self.events):
            try:
                listener(event)
            except Exception as exc:  # one failing listener must not silence the others
                self.failed(listener, exc, event.t_mono_s)

    def failed(self, listener: object, exc: Exception, t_s: float) -> None:
        self._stats.listener_errors += 1
        name = getattr(listener, "__qualname__", repr(listener))
        if self._stats.listener_errors <= LOGGED_LISTENER_ERRORS:
            log.error("bridge listener %s raised", name, exc_info=exc)
        if self.on_error is not None:
            try:
                self.on_error(name, exc, t_s)
            except Exception:
                log.exception("the listener-error handler raised")


def _discard(listeners: list[Any], listener: Any) -> None:
    if listener in listeners:
        listeners.remove(listener)
