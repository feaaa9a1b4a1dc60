"""Everything that happened, in SQLite (WAL): sessions, injections, events, alarms, pressure.

Writes go to one writer thread through a queue, so the event loop never waits on the
disk: ``submit`` returns at once with a future that completes when the write is
committed (the API awaits it before it reports an alarm). The thread commits what it
has in batches; a committed transaction is in the WAL and survives ``kill -9``.
Pressure is buffered per sample in a compact array and written every half second as
float32 blobs. Reads open their own connection in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import sqlite3
import threading
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, started_utc TEXT NOT NULL, info_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS injections (
    id TEXT PRIMARY KEY, session_id TEXT, created_utc TEXT NOT NULL, state TEXT NOT NULL,
    request_json TEXT NOT NULL, started_utc TEXT, ended_utc TEXT, delivered_ml REAL,
    alarm_json TEXT);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, injection_id TEXT, t_utc TEXT NOT NULL,
    t_mono_s REAL, kind TEXT NOT NULL, detail_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT, injection_id TEXT, kind TEXT NOT NULL,
    t_utc TEXT NOT NULL, t_mono_s REAL, detail TEXT NOT NULL, values_json TEXT NOT NULL,
    acknowledged_utc TEXT);
CREATE TABLE IF NOT EXISTS pressure (
    injection_id TEXT, first_index INTEGER, n INTEGER, t_json TEXT, data BLOB);
CREATE INDEX IF NOT EXISTS events_by_injection ON events (injection_id, id);
CREATE INDEX IF NOT EXISTS pressure_by_injection ON pressure (injection_id, first_index);
"""
FLUSH_PERIOD_S = 0.1  # the most of the pressure trace a kill -9 can take with it
_STOP = object()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class _Write:
    sql: str
    params: tuple[Any, ...] | list[tuple[Any, ...]]
    many: bool
    future: asyncio.Future[None] | None


class Recorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[_Write | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._trace_id: str | None = None
        self._trace_first = 0
        self._trace_t = array("d")
        self._trace_p = array("f")
        self._flush_handle: asyncio.TimerHandle | None = None
        self.writes = 0
        # Told of every event, alarm and acknowledgement once it is committed (the MQTT
        # publisher): outside consumers never see what the record does not hold.
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []
        # The first write that failed (disk full, read-only, I/O error), and who to tell: an
        # instrument that cannot record must not go on injecting.
        self.failure: str | None = None
        self.on_failure: Callable[[str], None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="recorder", daemon=True
        )
        self._thread.start()
        await ready
        self._flush_handle = self._loop.call_later(FLUSH_PERIOD_S, self._flush_tick)

    async def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        await self.flush_trace()
        self._queue.put(_STOP)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    # ------------------------------------------------------------ the writer thread
    def _run(self, ready: asyncio.Future[None]) -> None:
        assert self._loop is not None
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # every commit on disk: power loss too
        db.executescript(SCHEMA)
        self._loop.call_soon_threadsafe(_resolve, ready, None)
        try:
            while self._write_batch(db):
                pass
        finally:
            db.close()

    def _write_batch(self, db: sqlite3.Connection) -> bool:
        items = [self._queue.get()]
        while not self._queue.empty() and len(items) < 500:
            items.append(self._queue.get())
        writes = [i for i in items if isinstance(i, _Write)]
        error: Exception | None = None
        try:
            db.execute("BEGIN")
            for w in writes:
                if w.many:
                    db.executemany(w.sql, w.params)
                else:
                    db.execute(w.sql, w.params)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):  # no transaction left if COMMIT failed
                db.execute("ROLLBACK")
            error = exc
        self.writes += len(writes)
        assert self._loop is not None
        if error is not None:
            self._loop.call_soon_threadsafe(self._failed, f"{type(error).__name__}: {error}")
        for w in writes:
            if w.future is not None:
                self._loop.call_soon_threadsafe(_resolve, w.future, error)
        return not any(i is _STOP for i in items)

    def _failed(self, why: str) -> None:
        """On the loop: remember the first failure and tell the controller, once."""
        if self.failure is not None:
            return
        self.failure = why
        if self.on_failure is not None:
            self.on_failure(why)

    # ------------------------------------------------------------ writing (never blocks)
    def submit(self, sql: str, params: tuple[Any, ...] = ()) -> asyncio.Future[None]:
        """Queue a write; the future completes once it is committed. A failed write is
        reported once through ``on_failure``; writes nobody awaits do not warn again."""
        assert self._loop is not None, "recorder not started"
        future: asyncio.Future[None] = self._loop.create_future()
        future.add_done_callback(_retrieved)
        self._queue.put(_Write(sql, params, False, future))
        return future

    async def sync(self) -> None:
        """Return once everything queued before this call is committed."""
        await self.submit("SELECT 1")

    def session(self, session_id: str, info: dict[str, Any]) -> asyncio.Future[None]:
        return self.submit(
            "INSERT INTO sessions VALUES (?, ?, ?)", (session_id, utc_now(), json.dumps(info))
        )

    def injection(self, row: dict[str, Any]) -> asyncio.Future[None]:
        """Insert or update an injection row (``id``, ``state`` and whatever else changed)."""
        return self.submit(
            "INSERT INTO injections (id, session_id, created_utc, state, request_json, started_utc,"
            " ended_utc, delivered_ml, alarm_json) VALUES (:id, :session_id, :created_utc, :state,"
            " :request_json, :started_utc, :ended_utc, :delivered_ml, :alarm_json)"
            " ON CONFLICT(id) DO UPDATE SET state=excluded.state, started_utc=excluded.started_utc,"
            " ended_utc=excluded.ended_utc, delivered_ml=excluded.delivered_ml,"
            " alarm_json=excluded.alarm_json",
            row,  # type: ignore[arg-type]
        )

    def event(
        self, injection_id: str | None, kind: str, detail: dict[str, Any], t_mono_s: float
    ) -> asyncio.Future[None]:
        t_utc = utc_now()
        future = self.submit(
            "INSERT INTO events (injection_id, t_utc, t_mono_s, kind, detail_json)"
            " VALUES (?,?,?,?,?)",
            (injection_id, t_utc, t_mono_s, kind, json.dumps(detail)),
        )
        record = {"injection_id": injection_id, "t_utc": t_utc, "t_mono_s": t_mono_s}
        return self._tell("event", future, {**record, **detail, "kind": kind})

    def alarm(
        self,
        injection_id: str | None,
        kind: str,
        detail: str,
        values: dict[str, float],
        t_mono_s: float,
    ) -> asyncio.Future[None]:
        t_utc = utc_now()
        future = self.submit(
            "INSERT INTO alarms (injection_id, kind, t_utc, t_mono_s, detail, values_json)"
            " VALUES (?,?,?,?,?,?)",
            (injection_id, kind, t_utc, t_mono_s, detail, json.dumps(values)),
        )
        alarm = {"injection_id": injection_id, "kind": kind, "t_utc": t_utc}
        return self._tell("alarm", future, {**alarm, "t_mono_s": t_mono_s, "detail": detail})

    def acknowledge_alarms(self) -> asyncio.Future[None]:
        t_utc = utc_now()
        future = self.submit(
            "UPDATE alarms SET acknowledged_utc=? WHERE acknowledged_utc IS NULL", (t_utc,)
        )
        return self._tell("acknowledged", future, {"t_utc": t_utc})

    def _tell(
        self, what: str, future: asyncio.Future[None], record: dict[str, Any]
    ) -> asyncio.Future[None]:
        """Tell the observers once ``future`` (the commit) is done; a failed write is not told."""
        if self.observers:

            def committed(done: asyncio.Future[None]) -> None:
                if not done.cancelled() and done.exception() is None:
                    for observer in list(self.observers):
                        observer(what, record)

            future.add_done_callback(committed)
        return future

    # ------------------------------------------------------------ the pressure trace
    def trace_into(self, injection_id: str | None) -> None:
        """Samples from now on belong to this injection (``None``: not recorded)."""
        self._write_trace()
        self._trace_id = injection_id

    def add_sample(self, index: int, t_mono_s: float, pressure_mmhg: float, raw: int) -> None:
        """A bridge sample listener: two appends, nothing else on the control path."""
        if self._trace_id is None:
            return
        if not self._trace_t:
            self._trace_first = index
        self._trace_t.append(t_mono_s)
        self._trace_p.append(pressure_mmhg)

    def _flush_tick(self) -> None:
        self._write_trace()
        assert self._loop is not None
        self._flush_handle = self._loop.call_later(FLUSH_PERIOD_S, self._flush_tick)

    def _write_trace(self) -> asyncio.Future[None] | None:
        if not self._trace_t or self._trace_id is None:
            self._trace_t, self._trace_p = array("d"), array("f")
            return None
        t0, t1, n = self._trace_t[0], self._trace_t[-1], len(self._trace_t)
        times = json.dumps([t0, t1])
        future = self.submit(
            "INSERT INTO pressure VALUES (?,?,?,?,?)",
            (self._trace_id, self._trace_first, n, times, self._trace_p.tobytes()),
        )
        self._trace_t, self._trace_p = array("d"), array("f")
        return future

    async def flush_trace(self) -> None:
        future = self._write_trace()
        if future is not None:
            await future

    # ------------------------------------------------------------ reading (worker thread)
    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return await asyncio.to_thread(read_rows, self.path, sql, params)

    async def pressure(
        self, injection_id: str
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        rows = await self.query(
            "SELECT n, t_json, data FROM pressure WHERE injection_id=? ORDER BY first_index",
            (injection_id,),
        )
        return trace_arrays(rows)


def read_rows(path: Path, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
    db = sqlite3.connect(path)
    try:
        db.row_factory = sqlite3.Row
        return list(db.execute(sql, params))
    finally:
        db.close()


def trace_arrays(
    rows: list[sqlite3.Row],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    """Times (interpolated within each chunk) and pressures of a recorded trace."""
    times: list[npt.NDArray[np.float64]] = []
    values: list[npt.NDArray[np.float32]] = []
    for row in rows:
        t0, t1 = json.loads(row["t_json"])
        times.append(np.linspace(t0, t1, row["n"]))
        values.append(np.frombuffer(row["data"], dtype=np.float32))
    if not times:
        return np.empty(0), np.empty(0, dtype=np.float32)
    return np.concatenate(times), np.concatenate(values)


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # marks it retrieved; the failure itself goes to on_failure


def _resolve(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
