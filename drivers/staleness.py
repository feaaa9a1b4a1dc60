"""The transducer link's staleness timer: a bridge that goes quiet is a fault.

One timer, set for the deadline (the newest sample plus ``staleness_s`` while streaming,
the newest packet plus ``idle_staleness_s`` while idle) and moved only when it fires,
never per packet. A deadline that passes is judged only once the host has been
listening: bytes already waiting unread, or this timer running ``LATE_S`` late, mean the
host was busy, which says nothing about the link. Nothing pending at the deadline is
looked at once more ``SECOND_LOOK_S`` later: after a host stall a bridge emulated in the
host's process (the test rigs) writes its catch-up frames in the very iteration this
timer runs, and the kernel hands them to the port a moment after (a CI run's "no sample
for 21.0 ms"). At most ``MAX_LOOKS`` looks, so a host that never stops stalling still
raises the fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from drivers.clock import now_s

LATE_S = 0.005  # a staleness timer this late means the host loop was busy
SECOND_LOOK_S = 0.002  # a silence is confirmed this long after its deadline
MAX_LOOKS = 3


class StaleTimer:
    """Calls ``on_stale(now_s, quiet_since_s)`` when ``deadline()`` has passed for real."""

    def __init__(
        self,
        deadline: Callable[[], float],
        quiet_since: Callable[[], float],
        input_pending: Callable[[], bool],
        on_stale: Callable[[float, float], None],
        recheck_s: Callable[[], float],
    ) -> None:
        self._deadline = deadline
        self._quiet_since = quiet_since
        self._input_pending = input_pending
        self._on_stale = on_stale
        self._recheck_s = recheck_s
        self._handle: asyncio.TimerHandle | None = None
        self._looks = 0

    def arm(self) -> None:
        """Set the timer for the current deadline (after a state change, not per packet)."""
        self.cancel()
        self._handle = asyncio.get_running_loop().call_at(self._deadline(), self._check)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        now = now_s()
        deadline = self._deadline()
        if now < deadline:
            self._looks = 0
            self.arm()
            return
        loop = asyncio.get_running_loop()
        pending = self._input_pending()
        late = now - deadline > LATE_S
        if (pending or late or self._looks == 0) and self._looks < MAX_LOOKS:
            self._looks += 1
            delay_s = LATE_S if pending or late else SECOND_LOOK_S
            self._handle = loop.call_later(delay_s, self._check)
            return
        self._looks = 0
        self._on_stale(now, self._quiet_since())
        self._handle = loop.call_at(now + self._recheck_s(), self._check)
