"""Owned tasks end when their owner cancels them, even through Python 3.11's wait_for."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from drivers.tasks import cancel_and_wait

ROOT = Path(__file__).resolve().parents[3]
OWN_CODE = ("controller", "drivers", "dashboard", "simulator", "firmware_bridge", "bench")


def _task_that_survives_its_cancel(
    inner: asyncio.Future[None],
) -> tuple[asyncio.Task[None], asyncio.Event, asyncio.Event]:
    """A task awaiting ``wait_for`` as a library does, and flags that tell where it is."""
    waiting, ran_on = asyncio.Event(), asyncio.Event()

    async def body() -> None:
        waiting.set()
        await asyncio.wait_for(inner, 10.0)
        ran_on.set()  # reached only when the cancel was dropped
        await asyncio.Event().wait()  # a sender loop going back to sleep

    return asyncio.create_task(body()), waiting, ran_on


async def test_a_cancel_dropped_by_wait_for_is_repeated_until_the_task_ends() -> None:
    inner: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task, waiting, ran_on = _task_that_survives_its_cancel(inner)
    await waiting.wait()
    inner.set_result(None)  # the broker's acknowledgement arrives ...
    task.cancel()  # ... in the same loop iteration as the owner's cancel
    if sys.version_info < (3, 12):  # the hazard is real on the Python this project runs
        await ran_on.wait()
        assert not task.done()
    await cancel_and_wait(task, recancel_s=0.05)
    assert task.cancelled()


async def test_the_owners_own_cancel_is_not_absorbed_and_waits_for_its_tasks() -> None:
    """Cancelled itself while ending a child, the owner still waits for the child's end
    (its cleanup not cut short), then passes its own cancel on."""
    cleaning, release = asyncio.Event(), asyncio.Event()

    async def slow_to_end() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaning.set()
            await release.wait()  # cleanup that takes a while

    child = asyncio.create_task(slow_to_end())
    owner = asyncio.create_task(cancel_and_wait(child, recancel_s=10.0))
    await cleaning.wait()  # the owner has cancelled the child and is waiting for it
    owner.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not owner.done() and not child.done()  # the child is not abandoned mid-cleanup
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await owner
    assert child.cancelled()


async def test_a_dropped_cancel_is_repeated_however_often_the_owner_is_cancelled() -> None:
    """Nested owners: the MQTT publisher ends its sender, and the app's shutdown ends the
    publisher, both re-cancelling. Cancelled again before each of its own waits timed out,
    the publisher restarted the wait and never repeated the cancel its sender had dropped:
    a fresh-clone run's shutdown hung until the test's 120 s timeout (session 28)."""
    started, dropped = asyncio.Event(), asyncio.Event()

    async def drops_its_first_cancel() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            dropped.set()  # as a library's wait_for can (the test above)
        await asyncio.Event().wait()

    child = asyncio.create_task(drops_its_first_cancel())
    await started.wait()  # a task cancelled before its first step never runs its body
    owner = asyncio.create_task(cancel_and_wait(child, recancel_s=0.2))
    await dropped.wait()
    owners_owner = asyncio.create_task(cancel_and_wait(owner, recancel_s=0.05))
    await asyncio.wait({owners_owner}, timeout=5.0)  # never cancels what it waits for
    assert owners_owner.done(), "the dropped cancel was never repeated"
    assert child.cancelled() and owner.done()


async def test_an_error_the_task_ended_with_reaches_the_owner() -> None:
    async def fails() -> None:
        raise RuntimeError("device gone")

    failed = asyncio.create_task(fails())
    await asyncio.wait({failed})
    with pytest.raises(RuntimeError, match="device gone"):
        await cancel_and_wait(None, failed)


def test_our_code_never_calls_asyncio_wait_for() -> None:
    """asyncio.timeout propagates a cancel that asyncio.wait_for (3.11) can drop."""
    calls = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in OWN_CODE
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\basyncio\.wait_for\(", line)
    ]
    assert calls == []
