"""Everything that happened, in SQLite (WAL): sessions, injections, events, alarms, pressure.

Writes never block the event loop: ``submit`` queues a write and returns at once with a
future that completes when it is committed (the API awaits it before it reports an
alarm). One worker (a single-thread executor) drains the queue, committing what it finds
in batches; a committed transaction is in the WAL, on disk (``synchronous=FULL``), and
survives ``kill -9``. A batch that fails is written again one statement at a time, so one
bad write cannot take the unrelated writes of its batch (alarms among them) down with it.
The first failure is reported once (``on_failure``): an instrument that cannot record must
not go on injecting. Any exception in the worker, SQLite's or not, is such a failure.

The pressure trace is buffered per sample (``records.trace``) and written every
``FLUSH_PERIOD_S``. Reads are named queries (``records.queries``) run in a worker thread.

On the simulator's virtual clock the loop runs executor jobs inline, which keeps the
record deterministic there; the code here is the same.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from controller.records import queries
from controller.records.actors import current_actor
from controller.records.chain import append_link, start_chain
from controller.records.schema import SCHEMA, migrate
from controller.records.trace import TraceBuffer, trace_arrays

FLUSH_PERIOD_S = 0.1  # the most of the pressure trace a kill -9 can take with it
BATCH_MAX = 500
P = ParamSpec("P")
T = TypeVar("T")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class _Write:
    sql: str
    params: tuple[Any, ...] | dict[str, Any] | list[tuple[Any, ...]]
    many: bool
    future: asyncio.Future[None] | None
    chained: str | None = None  # the table whose new row is linked into the hash chain


class Recorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[_Write] = queue.SimpleQueue()
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._draining: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._trace_id: str | None = None
        self._trace = TraceBuffer()
        self._flush_handle: asyncio.TimerHandle | None = None
        self.writes = 0
        # Told of every event, alarm and acknowledgement once it is committed (the MQTT
        # publisher): outside consumers never see what the record does not hold.
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []
        # The first write that failed (disk full, read-only, I/O error), and who to tell.
        self.failure: str | None = None
        self.on_failure: Callable[[str], None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="recorder")
        await self._loop.run_in_executor(self._executor, self._open)
        self._flush_handle = self._loop.call_later(FLUSH_PERIOD_S, self._flush_tick)

    async def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        await self.flush_trace()
        await self.sync()
        if self._executor is not None and self._loop is not None:
            await self._loop.run_in_executor(self._executor, self._close_db)
            self._executor.shutdown(wait=False)
            self._executor = None

    # ------------------------------------------------------------ the worker
    def _open(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # every commit on disk: power loss too
        db.executescript(SCHEMA)
        migrate(db)
        start_chain(db, utc_now())
        self._db = db

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _drain(self) -> None:
        """In the worker: commit batches until the queue is empty."""
        while not self._queue.empty():
            writes = [self._queue.get()]
            while not self._queue.empty() and len(writes) < BATCH_MAX:
                writes.append(self._queue.get())
            self._commit_batch(writes)

    def _commit_batch(self, writes: list[_Write]) -> None:
        try:
            self._transaction(writes)
        except Exception:
            # one bad statement must not roll back its neighbours: each on its own
            for write in writes:
                try:
                    self._transaction([write])
                except Exception as exc:
                    self._report(write, f"{type(exc).__name__}: {exc}")
                else:
                    self._report(write, None)
            return
        for write in writes:
            self._report(write, None)

    def _transaction(self, writes: list[_Write]) -> None:
        db = self._db
        if db is None:
            raise sqlite3.OperationalError("the record is not open")
        db.execute("BEGIN")
        try:
            for w in writes:
                if w.many:
                    db.executemany(w.sql, w.params)
                    continue
                cursor = db.execute(w.sql, w.params)
                if w.chained is not None:
                    assert cursor.lastrowid is not None
                    append_link(db, w.chained, cursor.lastrowid)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _report(self, write: _Write, error: str | None) -> None:
        """From the worker: the write's future, and the failure, to the loop."""
        self.writes += 1
        assert self._loop is not None
        if error is not None:
            self._loop.call_soon_threadsafe(self._failed, error)
        if write.future is not None:
            exc = None if error is None else sqlite3.OperationalError(error)
            self._loop.call_soon_threadsafe(_resolve, write.future, exc)

    def _failed(self, why: str) -> None:
        """On the loop: remember the first failure and tell the controller, once."""
        if self.failure is not None:
            return
        self.failure = why
        if self.on_failure is not None:
            self.on_failure(why)

    def _kick(self) -> None:
        """Make sure the worker is draining (one drain job at a time)."""
        if self._draining is not None or self._executor is None:
            return
        assert self._loop is not None
        self._draining = self._loop.run_in_executor(self._executor, self._drain)
        self._draining.add_done_callback(self._drained)

    def _drained(self, job: asyncio.Future[None]) -> None:
        self._draining = None
        if not job.cancelled() and job.exception() is not None:
            self._failed(f"recorder worker: {job.exception()!r}")
        if not self._queue.empty():
            self._kick()  # written while the last drain was finishing

    # ------------------------------------------------------------ writing (never blocks)
    def submit(
        self,
        sql: str,
        params: tuple[Any, ...] | dict[str, Any] = (),
        chained: str | None = None,
    ) -> asyncio.Future[None]:
        """Queue a write; the future completes once it is committed. A failed write is
        reported once through ``on_failure``; writes nobody awaits do not warn again.
        ``chained``: the INSERT's table, whose new row joins the hash chain."""
        assert self._loop is not None, "recorder not started"
        future: asyncio.Future[None] = self._loop.create_future()
        future.add_done_callback(_retrieved)
        self._queue.put(_Write(sql, params, False, future, chained))
        self._kick()
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
            " ended_utc, delivered_ml, before_fill_ml, alarm_json) VALUES (:id, :session_id,"
            " :created_utc, :state, :request_json, :started_utc, :ended_utc, :delivered_ml,"
            " :before_fill_ml, :alarm_json)"
            " ON CONFLICT(id) DO UPDATE SET state=excluded.state, started_utc=excluded.started_utc,"
            " ended_utc=excluded.ended_utc, delivered_ml=excluded.delivered_ml,"
            " before_fill_ml=excluded.before_fill_ml, alarm_json=excluded.alarm_json",
            row,
        )

    def case(self, row: dict[str, Any]) -> asyncio.Future[None]:
        """A new case (``id``, ``created_utc``, ``subject``, ``cycle``, ``info_json``)."""
        return self.submit(
            "INSERT INTO cases (id, created_utc, subject, cycle, info_json)"
            " VALUES (:id, :created_utc, :subject, :cycle, :info_json)",
            row,
        )

    def case_plan(self, case_id: str, plan_json: str) -> asyncio.Future[None]:
        """The case's current plan (each plan is also an event, chained)."""
        return self.submit("UPDATE cases SET plan_json = ? WHERE id = ?", (plan_json, case_id))

    def user(self, name: str, role: str, token_sha256: str) -> asyncio.Future[None]:
        return self.submit(
            "INSERT INTO users (name, role, token_sha256, created_utc) VALUES (?, ?, ?, ?)",
            (name, role, token_sha256, utc_now()),
        )

    def disable_user(self, name: str) -> asyncio.Future[None]:
        """The person may no longer sign in; their row (and every event they made) stays."""
        return self.submit(
            "UPDATE users SET disabled_utc = ? WHERE name = ? AND disabled_utc IS NULL",
            (utc_now(), name),
        )

    def event(
        self, injection_id: str | None, kind: str, detail: dict[str, Any], t_mono_s: float
    ) -> asyncio.Future[None]:
        t_utc, actor = utc_now(), current_actor()
        future = self.submit(
            "INSERT INTO events (injection_id, t_utc, t_mono_s, kind, detail_json, actor)"
            " VALUES (?,?,?,?,?,?)",
            (injection_id, t_utc, t_mono_s, kind, json.dumps(detail), actor),
            chained="events",
        )
        record = {
            "injection_id": injection_id,
            "t_utc": t_utc,
            "t_mono_s": t_mono_s,
            "actor": actor,
        }
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
            "INSERT INTO alarms (injection_id, kind, t_utc, t_mono_s, detail, values_json, actor)"
            " VALUES (?,?,?,?,?,?,?)",
            (injection_id, kind, t_utc, t_mono_s, detail, json.dumps(values), current_actor()),
            chained="alarms",
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
        if self._trace_id is not None:
            self._trace.add(index, t_mono_s, pressure_mmhg)

    def _flush_tick(self) -> None:
        self._write_trace()
        assert self._loop is not None
        self._flush_handle = self._loop.call_later(FLUSH_PERIOD_S, self._flush_tick)

    def _write_trace(self) -> asyncio.Future[None] | None:
        chunks = self._trace.take()
        if not chunks or self._trace_id is None:
            return None
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        future.add_done_callback(_retrieved)
        rows = [chunk.as_row(self._trace_id) for chunk in chunks]
        self._queue.put(_Write("INSERT INTO pressure VALUES (?,?,?,?,?)", rows, True, future))
        self._kick()
        return future

    async def flush_trace(self) -> None:
        future = self._write_trace()
        if future is not None:
            await future

    # ------------------------------------------------------------ reading (worker thread)
    async def read(self, query: Callable[..., T], *args: Any) -> T:
        """Run a named query of ``records.queries`` on this record, off the loop."""
        return await asyncio.to_thread(query, self.path, *args)

    async def pressure(
        self, injection_id: str
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """An injection's trace, with NaN where samples were lost."""
        return trace_arrays(await self.read(queries.pressure_chunks, injection_id))


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
