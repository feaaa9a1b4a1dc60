"""``injectctl users``: add the people who may use ``serve``, list them, disable them.

``users add NAME --role ROLE --db FILE`` prints the new person's token once; the record
keeps only its SHA-256. A running ``serve`` on the same record accepts it at once.
``users disable NAME --db FILE`` stops a person signing in (a lost token, someone who
left): a running ``serve`` refuses their token within about a second. The row stays, so
the record still names them on everything they did, and the change is an event in the
chain.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from controller.cli.records_cmd import existing_db
from controller.records import queries
from controller.records.people import Role, checked_name, new_token, token_digest
from controller.records.recorder import Recorder


def add_parser(sub: Any) -> None:
    p = sub.add_parser("users", help="people who may sign in to serve, and their roles")
    verbs = p.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser("add", help="add a person and print their token once")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[str(r) for r in Role])
    listing = verbs.add_parser("list", help="everyone who may sign in")
    disable = verbs.add_parser("disable", help="stop a person signing in (their record stays)")
    disable.add_argument("name")
    for verb in (add, listing, disable):
        verb.add_argument("--db", type=Path, required=True, help="the record serve uses")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    if args.verb == "list":
        db = existing_db("users list", args.db)
        if db is None:
            return 2
        for row in await asyncio.to_thread(queries.users, db):
            print(f"{row['name']:24} {row['role']:11} since {row['created_utc']}")
        return 0
    if args.verb == "disable":
        return await _disable(args.name, args.db)
    return await _add(args.name, Role(args.role), args.db)


async def _disable(name: str, db_path: Path) -> int:
    db = existing_db("users disable", db_path)
    if db is None:
        return 2
    active = {row["name"] for row in await asyncio.to_thread(queries.users, db)}
    if name not in active:
        listed = ", ".join(sorted(active)) or "nobody"
        print(
            f"injectctl users disable: {name!r} is not someone who may sign in to {db}"
            f" (those who may: {listed}; `injectctl users list --db {db}`)",
            file=sys.stderr,
        )
        return 1
    recorder = Recorder(db)
    await recorder.start()
    try:
        await recorder.disable_user(name)
        await recorder.event(None, "user_disabled", {"name": name}, time.monotonic())
    finally:
        await recorder.close()
    print(f"disabled {name}: their token no longer signs in; the record keeps what they did")
    return 0


async def _add(name: str, role: Role, db: Path) -> int:
    try:
        checked_name(name)
    except ValueError as exc:
        print(f"injectctl users add: {exc}", file=sys.stderr)
        return 2
    token = new_token()
    recorder = Recorder(db)
    await recorder.start()
    try:
        await recorder.user(name, str(role), token_digest(token))
    except sqlite3.Error as exc:
        taken = "UNIQUE" in str(exc)
        why = f"{name!r} is already in {db}" if taken else f"the record refused it: {exc}"
        print(f"injectctl users add: {why}", file=sys.stderr)
        return 1
    finally:
        await recorder.close()
    print(f"added {name} ({role}); their token, shown only now:\n{token}")
    return 0
