"""The leaked-task check, shared by the autouse fixture and the virtual-clock runs (whose
loop is not the fixture's)."""

from __future__ import annotations

import asyncio


async def assert_no_task_left(before: set[asyncio.Task[object]]) -> None:
    """Fail if a task started since ``before`` is still running: every task must have an
    owner that awaits it."""
    for _ in range(3):  # let transports finish their own close callbacks
        await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    assert not leaked, f"tasks leaked by the test: {leaked}"
