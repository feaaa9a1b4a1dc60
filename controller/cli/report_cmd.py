"""``injectctl report``: the procedure report from a recorder database, or one case in the
standards' forms (``--case ID --format json|html|pdf|fhir|odm|redcap|redcap-dictionary``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from controller.procedure.casebook import CaseBook, NoSuchCase
from controller.records.exports.render import FORMATS, export_case
from controller.records.recorder import Recorder
from controller.records.report import build_report, to_csv, to_html

SESSION_FORMATS = ("json", "csv", "html")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="procedure report, or a case's export, from a database")
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--session", help="only this session")
    p.add_argument("--case", help="one case, in --format json, html, pdf, fhir, odm, redcap")
    p.add_argument("--format", choices=sorted({*SESSION_FORMATS, *FORMATS}), default="json")
    p.add_argument("--out", type=Path, help="write here instead of standard output")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    if not args.db.exists():
        print(f"injectctl report: no database at {args.db}", file=sys.stderr)
        return 2
    if args.case is None and args.format not in SESSION_FORMATS:
        print(
            f"injectctl report: --format {args.format} is for one case: give --case ID",
            file=sys.stderr,
        )
        return 2
    if args.case is not None and args.format not in FORMATS:
        print(f"injectctl report: a case exports as {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    text = await (_case(args) if args.case is not None else _session(args))
    if text is None:
        return 1
    if isinstance(text, bytes) and args.out is None and sys.stdout.isatty():
        print("injectctl report: a PDF is not for a terminal: give --out FILE", file=sys.stderr)
        return 2
    if args.out is None:
        _write_stdout(text)
    else:
        write = args.out.write_bytes if isinstance(text, bytes) else args.out.write_text
        await asyncio.to_thread(write, text)
        print(f"report written to {args.out}")
    return 0


def _write_stdout(text: str | bytes) -> None:
    if isinstance(text, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(text)


async def _session(args: argparse.Namespace) -> str:
    report = await asyncio.to_thread(build_report, args.db, args.session)
    render = {"json": lambda r: json.dumps(r, indent=2), "csv": to_csv, "html": to_html}
    return str(render[args.format](report))


async def _case(args: argparse.Namespace) -> str | bytes | None:
    recorder = Recorder(args.db)
    await recorder.start()
    try:
        text, _ = await export_case(CaseBook(recorder), args.db, args.case, args.format)
        return text
    except NoSuchCase as exc:
        print(f"injectctl report: {exc} in {args.db}", file=sys.stderr)
        return None
    finally:
        await recorder.close()
