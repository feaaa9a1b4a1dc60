"""A case on one printable page: subject and cycle, plan, drugs, checklist with names and
times, injections, the images chosen for each lesion and the structured reports written
to the archive, and the record's actors. (The PDF of the same page: ``exports/pdf.py``.)"""

from __future__ import annotations

import html
from typing import Any

NOTE = "Research use only; not a cleared medical device."


def case_html(case: dict[str, Any]) -> str:
    esc = html.escape
    title = f"Case {case['subject']}, cycle {case['cycle']}"
    return f"""<!doctype html><html lang=en><head><meta charset=utf-8>
<title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%;
margin-bottom:1em}}td,th{{border:1px solid #888;padding:4px;vertical-align:top;text-align:left}}
@media print{{body{{margin:0}}}}</style></head><body>
<h1>{esc(title)}</h1>
<p>Study {esc(case.get("study") or "-")}, visit {esc(case.get("visit") or "-")},
date {esc(case.get("date") or "-")}; case {esc(case["id"])}, status {esc(case["status"])}.
<strong>{NOTE}</strong></p>
<h2>Plan</h2>{_plan(case)}
<h2>Drugs prepared</h2>{
        _table(case["drugs"], ("drug", "lot", "prepared_utc", "prepared_volume_ml"))
    }
<h2>Checklist</h2>{_table(case["checklist"], ("phase", "text", "done", "by", "at"))}
<h2>Injections</h2>{
        _table(
            case["injections"],
            ("lesion", "drug", "state", "volume_ml", "delivered_ml", "sector", "aliquots"),
        )
    }
<h2>Imaging</h2>{
        _table(
            case.get("imaging", []),
            ("lesion", "role", "study_uid", "series_uid", "sop_instance_uid", "by", "at"),
        )
    }
{_table(case.get("imaging_reports", []), ("study_uid", "series_uid", "sop_instance_uid", "at"))}
<h2>Record</h2><p>{esc(case.get("record_chain", {}).get("summary", ""))}</p>
{_table(case["events"], ("t", "kind", "actor"))}
</body></html>
"""


def _plan(case: dict[str, Any]) -> str:
    plan = case.get("plan")
    if plan is None:
        return "<p>No plan recorded.</p>"
    columns = (
        "label",
        "injected",
        "organ",
        "size_mm",
        "depth_mm",
        "technique",
        "volume_ml",
        "drugs",
        "delivered_ml",
        "remaining_ml",
        "warnings",
    )
    return _table(plan["lesions"], columns)


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    if not rows:
        return "<p>None.</p>"
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(_text(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
