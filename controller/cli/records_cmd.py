"""``injectctl records verify``: check the record's hash chain and name the first broken
link (exit 0 verified, 1 broken, 2 no record)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from controller.records.chain import verify


def add_parser(sub: Any) -> None:
    p = sub.add_parser("records", help="the record's integrity")
    verbs = p.add_subparsers(dest="verb", required=True)
    check = verbs.add_parser("verify", help="check the hash chain of every event and alarm")
    check.add_argument("--db", type=Path, required=True)
    p.set_defaults(run=run)


def existing_db(command: str, db: Path) -> Path | None:
    """``db`` if it exists; else says so (commands that read must not create a record)."""
    if db.is_file():
        return db
    print(f"injectctl {command}: no record at {db} (give serve's --db)", file=sys.stderr)
    return None


async def run(args: argparse.Namespace) -> int:
    db = existing_db("records verify", args.db)
    if db is None:
        return 2
    report = await asyncio.to_thread(verify, db)
    print(report.summary())
    return 0 if report.verified else 1
