"""The record's hash chain and its actors: every event and alarm linked as it is
committed, ``verify`` names the first link that was tampered with, and each row says who
asked for it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from controller.records.actors import CONTROLLER, act_as, controller_context, current_actor
from controller.records.chain import verify
from controller.records.queries import read_rows
from controller.records.recorder import Recorder


async def recorded(path: Path) -> None:
    """Three events and an alarm, the second event asked for by a person."""
    recorder = Recorder(path)
    await recorder.start()
    try:
        await recorder.event(None, "transducer_zeroed", {"zero_counts": 12.0}, 1.0)

        async def by_ada() -> None:
            act_as("ada")
            await recorder.event("inj1", "start", {"rate_ml_min": 1.0}, 2.0)

        await asyncio.create_task(by_ada())  # a request's own task, as the API runs it
        await recorder.alarm("inj1", "occlusion", "blocked", {"p": 300.0}, 3.0)
        await recorder.event("inj1", "alarm", {"delivered_ml": 0.2}, 4.0)
        await recorder.acknowledge_alarms()  # changes the alarm row by design
    finally:
        await recorder.close()


def tamper(path: Path, sql: str) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute(sql)
    db.close()


async def test_an_untouched_record_verifies_and_rows_carry_their_actor(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    await recorded(db)
    report = verify(db)
    assert report.verified and report.links == 4 and report.broken is None
    actors = [r["actor"] for r in read_rows(db, "SELECT actor FROM events ORDER BY id")]
    assert actors == [CONTROLLER, "ada", CONTROLLER]
    assert current_actor() == CONTROLLER  # the request's actor stayed in its task


@pytest.mark.parametrize(
    ("sql", "broken"),
    [
        ("UPDATE events SET detail_json = '{\"rate_ml_min\": 0.5}' WHERE id = 2", "link 2 "),
        ("UPDATE alarms SET kind = 'leak'", "link 3 "),
        ("UPDATE events SET actor = 'bob' WHERE id = 3", "link 4 "),
        ("DELETE FROM events WHERE id = 1", "link 1 (events row 1): the row was deleted"),
        ("DELETE FROM chain WHERE seq = 2", "link 3 "),
        (
            "INSERT INTO events (t_utc, kind, detail_json) VALUES ('2026', 'forged', '{}')",
            "events row 4 is not in the chain",
        ),
    ],
)
async def test_a_tampered_record_names_its_first_broken_link(
    tmp_path: Path, sql: str, broken: str
) -> None:
    db = tmp_path / "record.sqlite"
    await recorded(db)
    tamper(db, sql)
    report = verify(db)
    assert not report.verified
    assert report.broken is not None and broken in report.broken, report.broken
    assert "BROKEN" in report.summary()


async def test_an_older_record_reopened_chains_from_then_on(tmp_path: Path) -> None:
    """Rows written before the record was chained are counted as older, not as tampering."""
    db = tmp_path / "record.sqlite"
    old = sqlite3.connect(db)
    with old:
        old.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, injection_id TEXT,"
            " t_utc TEXT NOT NULL, t_mono_s REAL, kind TEXT NOT NULL, detail_json TEXT NOT NULL)"
        )
        old.execute("INSERT INTO events (t_utc, kind, detail_json) VALUES ('2025', 'old', '{}')")
    old.close()
    await recorded(db)
    report = verify(db)
    assert report.verified and report.unchained == 1 and report.links == 4


async def test_the_controllers_own_tasks_act_as_the_controller() -> None:
    act_as("ada")
    seen: list[str] = []

    async def watch() -> None:
        seen.append(current_actor())

    await asyncio.create_task(watch(), context=controller_context())
    await asyncio.create_task(watch())
    assert seen == [CONTROLLER, "ada"]
