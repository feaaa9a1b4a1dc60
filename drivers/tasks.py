"""Ending an owned task for certain.

Every task in injectctl has an owner that cancels it and waits for it to end. On Python
3.11, the version this project runs, a plain ``task.cancel()`` followed by
``with suppress(CancelledError): await task`` is not enough, for two reasons:

* ``asyncio.wait_for``, which libraries use inside their calls (aiomqtt in every publish),
  returns the inner result and drops a cancel that lands in the same loop iteration as the
  inner future completing (CPython gh-86296, gone with 3.12's rewrite on
  ``asyncio.timeout``). The task runs on as if never cancelled and its owner waits for
  ever: the MQTT publisher hung a shutdown this way under CI load.
* ``suppress(CancelledError)`` around ``await task`` also swallows a cancel aimed at the
  owner itself.

So the owner repeats the cancel until the task has ended, and waits with ``asyncio.wait``,
which never raises the task's CancelledError and never absorbs the owner's own. Our own
code uses ``asyncio.timeout`` rather than ``asyncio.wait_for`` (tests/test_tasks.py checks).
"""

from __future__ import annotations

import asyncio
from typing import Any

RECANCEL_S = 0.5  # a task still running this long after a cancel is cancelled again
CLOCK_SLACK_S = 1e-3  # a wait's timer may wake a little before its deadline on loop.time()


async def cancel_and_wait(
    *tasks: asyncio.Future[Any] | None, recancel_s: float = RECANCEL_S
) -> None:
    """Cancel the tasks, wait until every one has ended, then raise the first error one of
    them ended with (other than being cancelled), as ``await task`` would have.

    If the caller is itself cancelled meanwhile (its own owner repeating the cancel), it
    still waits for its tasks to end, then raises that CancelledError, as a TaskGroup does:
    otherwise a repeated cancel from above abandoned a child half-cancelled (the MQTT
    sender, seen leaked in a fresh-clone run)."""
    owned = [task for task in tasks if task is not None]
    pending = {task for task in owned if not task.done()}
    loop = asyncio.get_running_loop()
    interrupted = False
    # The re-cancel keeps its own clock: a caller cancelled as often as recancel_s (its
    # owner re-cancelling it on the same period) once restarted the wait each time, never
    # timed out, and never repeated a cancel the task had dropped (a shutdown hung 120 s).
    next_cancel_s = loop.time()
    while pending:
        if loop.time() >= next_cancel_s - CLOCK_SLACK_S:
            for task in pending:
                task.cancel()
            next_cancel_s = loop.time() + recancel_s
        try:
            _, pending = await asyncio.wait(pending, timeout=next_cancel_s - loop.time())
        except asyncio.CancelledError:
            interrupted = True  # ours end first, then the caller's cancel is raised
            pending = {task for task in pending if not task.done()}
    if interrupted:
        raise asyncio.CancelledError
    errors = [task.exception() for task in owned if not task.cancelled()]
    first = next((error for error in errors if error is not None), None)
    if first is not None:
        raise first
