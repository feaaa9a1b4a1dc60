"""The one clock the control path reads: the running event loop's.

In production ``loop.time()`` is ``time.monotonic()``. Reading it through the loop lets
the very same drivers, controller and emulators run on a virtual clock (the simulator's
``VirtualClockLoop``), where time jumps to the next timer whenever nothing is ready, so a
benchmark runs the real ``Controller`` many times faster than real time. Every monotonic
time stamp in injectctl (``t_mono_s``) is on this clock.
"""

from __future__ import annotations

import asyncio


def now_s() -> float:
    """Monotonic seconds on the running loop's clock; call it from the loop only."""
    return asyncio.get_running_loop().time()
