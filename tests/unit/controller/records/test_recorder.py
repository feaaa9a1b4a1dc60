"""The recorder's worker (issue 18, item 13): one bad statement neither kills the worker
nor rolls back its neighbours, and the failure is reported, not swallowed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.records.queries import read_rows
from controller.records.recorder import Recorder


async def test_a_bad_write_loses_nothing_else_and_is_reported(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "db.sqlite")
    failures: list[str] = []
    recorder.on_failure = failures.append
    await recorder.start()
    try:
        # queued together, so they are committed as one batch if the worker is quick
        before = recorder.event(None, "before", {"n": 1}, 1.0)
        bad = recorder.submit("INSERT INTO no_such_table VALUES (1)")
        alarm = recorder.alarm(None, "occlusion", "blocked", {"p": 300.0}, 2.0)
        after = recorder.event(None, "after", {"n": 2}, 3.0)
        results = await asyncio.gather(before, bad, alarm, after, return_exceptions=True)
        assert results[0] is None and results[2] is None and results[3] is None
        assert isinstance(results[1], Exception) and "no_such_table" in str(results[1])
        await recorder.sync()
        kinds = await recorder.read(read_rows, "SELECT kind FROM events ORDER BY id")
        assert [r["kind"] for r in kinds] == ["before", "after"]
        alarms = await recorder.read(read_rows, "SELECT kind FROM alarms")
        assert [r["kind"] for r in alarms] == ["occlusion"]
        assert failures and "no_such_table" in failures[0]
        await recorder.event(None, "still writing", {}, 4.0)  # the worker lives on
        await recorder.sync()
        rows = await recorder.read(read_rows, "SELECT kind FROM events ORDER BY id")
        assert rows[-1]["kind"] == "still writing"
    finally:
        await recorder.close()


@pytest.mark.parametrize("value", [object(), {1, 2}])
async def test_a_value_sqlite_cannot_store_is_a_reported_failure(
    tmp_path: Path, value: object
) -> None:
    """Not every failure in the worker is an ``sqlite3.Error`` in spirit; whichever it is,
    it reaches the caller and ``on_failure``."""
    recorder = Recorder(tmp_path / "db.sqlite")
    failures: list[str] = []
    recorder.on_failure = failures.append
    await recorder.start()
    try:
        with pytest.raises(Exception):  # noqa: B017 - whichever the driver raises
            await recorder.submit("INSERT INTO events (kind) VALUES (?)", (value,))
        assert failures
        await recorder.event(None, "after", {}, 1.0)  # and the worker lives on
        await recorder.sync()
        rows = await recorder.read(read_rows, "SELECT kind FROM events")
        assert [r["kind"] for r in rows] == ["after"]
    finally:
        await recorder.close()
