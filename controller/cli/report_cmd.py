"""``injectctl report``: the procedure report from a recorder database."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from controller.records.report import build_report, to_csv, to_html


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="procedure report (JSON, CSV or HTML) from a database")
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--session", help="only this session")
    p.add_argument("--format", choices=("json", "csv", "html"), default="json")
    p.add_argument("--out", type=Path, help="write here instead of standard output")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    if not args.db.exists():
        print(f"injectctl report: no database at {args.db}", file=sys.stderr)
        return 2
    report = await asyncio.to_thread(build_report, args.db, args.session)
    text = {"json": lambda r: json.dumps(r, indent=2), "csv": to_csv, "html": to_html}[args.format](
        report
    )
    if args.out is None:
        sys.stdout.write(text)
    else:
        await asyncio.to_thread(args.out.write_text, text)
        print(f"report written to {args.out}")
    return 0
