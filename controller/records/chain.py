"""The record's hash chain: every event and alarm linked to the one before it.

Each committed event or alarm appends a link (``chain`` table) holding the SHA-256 of the
previous link's hash, the table, and the row's recorded columns. Changing a row, deleting
one, inserting one outside the recorder or removing a link breaks the chain from that
point, and ``verify`` names the first broken link. The columns a later write may change
by design (an alarm's acknowledgement time) are left out; the acknowledgement is an event
of its own, chained. This is tamper-evidence, not tamper-proofing: whoever can rewrite
the whole file can rebuild the chain; a copy of the last hash kept elsewhere (the report
prints it) closes that.

Links are appended inside the recorder's writer transaction, so a row and its link are
committed together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
CHAINED_COLUMNS = {
    "events": ("id", "injection_id", "t_utc", "t_mono_s", "kind", "detail_json", "actor"),
    "alarms": ("id", "injection_id", "kind", "t_utc", "t_mono_s", "detail", "values_json", "actor"),
}


def link_hash(previous: str, table: str, row: Sequence[Any]) -> str:
    payload = json.dumps([previous, table, list(row)], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _row(db: sqlite3.Connection, table: str, row_id: int) -> tuple[Any, ...] | None:
    columns = ", ".join(CHAINED_COLUMNS[table])
    found = db.execute(f"SELECT {columns} FROM {table} WHERE id = ?", (row_id,)).fetchone()
    return None if found is None else tuple(found)


def append_link(db: sqlite3.Connection, table: str, row_id: int) -> None:
    """In the writer's transaction, right after the row's INSERT."""
    last = db.execute("SELECT hash FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
    row = _row(db, table, row_id)
    assert row is not None, f"{table} row {row_id} vanished inside its own transaction"
    db.execute(
        "INSERT INTO chain (row_table, row_id, hash) VALUES (?, ?, ?)",
        (table, row_id, link_hash(last[0] if last else GENESIS, table, row)),
    )


@dataclass(frozen=True)
class ChainReport:
    verified: bool
    links: int  # links checked
    last_hash: str
    broken: str | None = None  # the first broken link, in words
    unchained: int = 0  # rows written before this record was chained (older injectctl)

    def summary(self) -> str:
        if not self.verified:
            return f"chain BROKEN after {self.links} good links: {self.broken}"
        older = f"; {self.unchained} older rows predate the chain" if self.unchained else ""
        return f"chain verified: {self.links} links, last {self.last_hash[:16]}{older}"


def verify(path: Path) -> ChainReport:
    """Walk the chain from its start; name the first link that does not hold."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return _verify(db)
    finally:
        db.close()


def _verify(db: sqlite3.Connection) -> ChainReport:
    previous, links = GENESIS, 0
    seen: dict[str, set[int]] = {table: set() for table in CHAINED_COLUMNS}
    for seq, table, row_id, stored in db.execute(
        "SELECT seq, row_table, row_id, hash FROM chain ORDER BY seq"
    ):
        where = f"link {seq} ({table} row {row_id})"
        if table not in CHAINED_COLUMNS:
            return ChainReport(False, links, previous, f"{where}: not a chained table")
        row = _row(db, table, row_id)
        if row is None:
            return ChainReport(False, links, previous, f"{where}: the row was deleted")
        if link_hash(previous, table, row) != stored:
            return ChainReport(
                False, links, previous, f"{where}: the row or the link before it was altered"
            )
        seen[table].add(row_id)
        previous, links = stored, links + 1
    return _unchained_rows(db, seen, links, previous)


def start_chain(db: sqlite3.Connection, started_utc: str) -> None:
    """When the record is opened: note where its chain begins, once."""
    if db.execute("SELECT 1 FROM chain_start").fetchone() is None:
        (events,) = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        (alarms,) = db.execute("SELECT coalesce(max(id), 0) FROM alarms").fetchone()
        db.execute("INSERT INTO chain_start VALUES (?, ?, ?)", (started_utc, events, alarms))


def _unchained_rows(
    db: sqlite3.Connection, seen: dict[str, set[int]], links: int, last: str
) -> ChainReport:
    """Rows without a link: up to where the chain began, an older record's; after it,
    written behind the recorder's back."""
    start = db.execute("SELECT events_before, alarms_before FROM chain_start").fetchone()
    before = dict(zip(CHAINED_COLUMNS, start or (0, 0), strict=True))
    older = 0
    for table, ids in seen.items():
        for (row_id,) in db.execute(f"SELECT id FROM {table} ORDER BY id"):
            if row_id in ids:
                continue
            if row_id > before[table]:
                why = f"{table} row {row_id} is not in the chain (written outside the recorder)"
                return ChainReport(False, links, last, why)
            older += 1
    return ChainReport(True, links, last, None, older)
