"""The record's tables, in one place: what every writer and reader of the record agrees on."""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, started_utc TEXT NOT NULL, info_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS injections (
    id TEXT PRIMARY KEY, session_id TEXT, created_utc TEXT NOT NULL, state TEXT NOT NULL,
    request_json TEXT NOT NULL, started_utc TEXT, ended_utc TEXT, delivered_ml REAL,
    alarm_json TEXT, before_fill_ml REAL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, injection_id TEXT, t_utc TEXT NOT NULL,
    t_mono_s REAL, kind TEXT NOT NULL, detail_json TEXT NOT NULL, actor TEXT);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT, injection_id TEXT, kind TEXT NOT NULL,
    t_utc TEXT NOT NULL, t_mono_s REAL, detail TEXT NOT NULL, values_json TEXT NOT NULL,
    acknowledged_utc TEXT, actor TEXT);
-- the pressure trace in chunks of consecutive bridge samples (a gap starts a new chunk):
-- first_index and n say which samples, t_json the times of the first and the last
CREATE TABLE IF NOT EXISTS pressure (
    injection_id TEXT, first_index INTEGER, n INTEGER, t_json TEXT, data BLOB);
-- the hash chain over every event and alarm, in the order they were committed: each link
-- hashes the row it names with the link before it (records.chain)
CREATE TABLE IF NOT EXISTS chain (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, row_table TEXT NOT NULL, row_id INTEGER NOT NULL,
    hash TEXT NOT NULL);
-- when this record began its chain: rows up to these ids were written before (an older
-- injectctl) and are reported as unchained, not as tampered
CREATE TABLE IF NOT EXISTS chain_start (
    started_utc TEXT NOT NULL, events_before INTEGER NOT NULL, alarms_before INTEGER NOT NULL);
-- a case: one subject's procedure in one cycle; its plan is the last one recorded
CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY, created_utc TEXT NOT NULL, subject TEXT NOT NULL, cycle INTEGER NOT NULL,
    info_json TEXT NOT NULL, plan_json TEXT);
-- people: a token is stored only as its SHA-256 (tokens are 256-bit random, so a plain
-- hash is not guessable; passwords would need argon2)
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,
    created_utc TEXT NOT NULL, disabled_utc TEXT);
CREATE INDEX IF NOT EXISTS events_by_injection ON events (injection_id, id);
CREATE INDEX IF NOT EXISTS cases_by_subject ON cases (subject, cycle);
CREATE INDEX IF NOT EXISTS pressure_by_injection ON pressure (injection_id, first_index);
"""

# Columns added since the first release, so a record written by an older injectctl opens:
# (table, column, declaration).
ADDED_COLUMNS = (
    ("injections", "before_fill_ml", "REAL"),
    ("events", "actor", "TEXT"),  # who asked: a person's name, or "controller"
    ("alarms", "actor", "TEXT"),
)


def migrate(db: sqlite3.Connection) -> None:
    """Add the columns an older record lacks (nothing is ever dropped or rewritten)."""
    for table, column, declaration in ADDED_COLUMNS:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
