"""Every read of the record, by name. Each opens its own connection (SQLite WAL lets readers
run beside the writer) and is called in a worker thread: ``await recorder.read(query, ...)``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

INJECTION_COLUMNS = (
    "id, session_id, state, delivered_ml, before_fill_ml, request_json, created_utc,"
    " started_utc, ended_utc, alarm_json"
)
Rows = list[sqlite3.Row]


def read_rows(path: Path, sql: str, params: Sequence[Any] = ()) -> Rows:
    """Any read, for tools and tests that inspect the record; product code names its query."""
    db = sqlite3.connect(path)
    try:
        db.row_factory = sqlite3.Row
        return list(db.execute(sql, tuple(params)))
    finally:
        db.close()


def injection(path: Path, injection_id: str) -> sqlite3.Row | None:
    rows = read_rows(
        path, f"SELECT {INJECTION_COLUMNS} FROM injections WHERE id = ?", (injection_id,)
    )
    return rows[0] if rows else None


def injections_in_states(path: Path, states: Sequence[str]) -> Rows:
    marks = ",".join("?" * len(states))
    return read_rows(
        path,
        f"SELECT {INJECTION_COLUMNS} FROM injections WHERE state IN ({marks}) ORDER BY created_utc",
        states,
    )


def recent_injections(path: Path, limit: int) -> Rows:
    return read_rows(
        path,
        f"SELECT {INJECTION_COLUMNS} FROM injections ORDER BY created_utc DESC LIMIT ?",
        (limit,),
    )


def session_injections(path: Path, session_id: str | None) -> Rows:
    """The injections of one session, or of every session, oldest first."""
    if session_id is None:
        return read_rows(path, f"SELECT {INJECTION_COLUMNS} FROM injections ORDER BY created_utc")
    return read_rows(
        path,
        f"SELECT {INJECTION_COLUMNS} FROM injections WHERE session_id = ? ORDER BY created_utc",
        (session_id,),
    )


def injection_events(path: Path, injection_id: str) -> Rows:
    return read_rows(
        path,
        "SELECT t_utc, kind, detail_json FROM events WHERE injection_id = ? ORDER BY id",
        (injection_id,),
    )


def recent_events(path: Path, limit: int) -> Rows:
    return read_rows(
        path,
        "SELECT injection_id, t_utc, kind, detail_json, actor FROM events ORDER BY id DESC LIMIT ?",
        (limit,),
    )


def latest_event_of_kind(path: Path, kind: str) -> sqlite3.Row | None:
    rows = read_rows(
        path, "SELECT detail_json FROM events WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,)
    )
    return rows[0] if rows else None


def injection_alarms(path: Path, injection_id: str) -> Rows:
    return read_rows(
        path,
        "SELECT t_utc, kind, detail, acknowledged_utc FROM alarms WHERE injection_id = ?"
        " ORDER BY id",
        (injection_id,),
    )


def pressure_chunks(path: Path, injection_id: str) -> Rows:
    """The trace's chunks in the order they were written (a restarted stream's index goes
    back to 0, so the index alone does not order them)."""
    return read_rows(
        path,
        "SELECT first_index, n, t_json, data FROM pressure WHERE injection_id = ? ORDER BY rowid",
        (injection_id,),
    )


def users(path: Path) -> Rows:
    """Everyone who may sign in (disabled people left out)."""
    return read_rows(
        path,
        "SELECT name, role, token_sha256, created_utc FROM users WHERE disabled_utc IS NULL"
        " ORDER BY created_utc",
    )


def case(path: Path, case_id: str) -> sqlite3.Row | None:
    rows = read_rows(
        path,
        "SELECT id, created_utc, subject, cycle, info_json, plan_json FROM cases WHERE id = ?",
        (case_id,),
    )
    return rows[0] if rows else None


def case_injections(path: Path, case_id: str) -> Rows:
    """A case's injections, oldest first (the case id travels in the request)."""
    return read_rows(
        path,
        f"SELECT {INJECTION_COLUMNS} FROM injections"
        " WHERE json_extract(request_json, '$.case_id') = ? ORDER BY created_utc",
        (case_id,),
    )


def subject_injections(path: Path, subject: str) -> Rows:
    """Every injection of a subject's cases, every cycle (the sequential technique's
    history is per subject and lesion, never per label alone)."""
    return read_rows(
        path,
        "SELECT injections.id, state, delivered_ml, request_json, injections.created_utc,"
        " cases.cycle AS case_cycle FROM injections JOIN cases"
        " ON cases.id = json_extract(injections.request_json, '$.case_id')"
        " WHERE cases.subject = ? ORDER BY injections.created_utc",
        (subject,),
    )


def case_events(path: Path, case_id: str) -> Rows:
    """The case's own events (plan, checklist, drugs) and its injections' events."""
    return read_rows(
        path,
        "SELECT events.id, events.injection_id, t_utc, kind, detail_json, actor FROM events"
        " WHERE json_extract(detail_json, '$.case_id') = ? OR injection_id IN"
        " (SELECT id FROM injections WHERE json_extract(request_json, '$.case_id') = ?)"
        " ORDER BY events.id",
        (case_id, case_id),
    )
