"""The procedure report for the case report form: JSON, CSV and a printable HTML page.

Per injection (one row per target, aliquot or sector): what was planned and delivered,
how long it took, the pressure seen (min, median, max), and every alarm and action,
straight from the recorder's database.
"""

from __future__ import annotations

import csv
import html
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from controller.records import queries
from controller.records.chain import verify
from controller.records.trace import trace_arrays

CSV_FIELDS = [
    "id",
    "target",
    "aliquots",
    "cycle",
    "sector",
    "state",
    "volume_ml",
    "rate_ml_min",
    "delivered_ml",
    "duration_s",
    "pressure_min_mmhg",
    "pressure_median_mmhg",
    "pressure_max_mmhg",
    "alarm",
    "actions",
]


def build_report(db: Path, session_id: str | None = None) -> dict[str, Any]:
    rows = queries.session_injections(db, session_id)
    chain = verify(db)
    return {
        "generated_utc": datetime.now().astimezone().isoformat(timespec="seconds"),
        "database": str(db),
        "note": "research use only; not a cleared medical device",
        "record_chain": {
            "verified": chain.verified,
            "summary": chain.summary(),
            "links": chain.links,
            "last_hash": chain.last_hash,
        },
        "injections": [injection_detail(db, dict(row)) for row in rows],
    }


def injection_detail(db: Path, row: dict[str, Any]) -> dict[str, Any]:
    """One injection as the reports and exports give it: the request, what was delivered,
    when, the pressure seen, its alarms and events."""
    request = json.loads(row["request_json"])
    _, pressure = trace_arrays(queries.pressure_chunks(db, row["id"]))
    pressure = pressure[~np.isnan(pressure)]
    stats = (
        [round(float(f(pressure)), 1) for f in (np.min, np.median, np.max)]
        if pressure.size
        else [None, None, None]
    )
    events = queries.injection_events(db, row["id"])
    alarms = queries.injection_alarms(db, row["id"])
    return {
        "id": row["id"],
        "created_utc": row["created_utc"],
        "target": request.get("target"),
        "case_id": request.get("case_id"),
        "lesion": request.get("lesion"),
        "aliquots": request.get("aliquots", 1),
        "cycle": request.get("cycle"),
        "sector": request.get("sector"),
        "syringe": request.get("syringe"),
        "needle": request.get("needle"),
        "drug": request.get("drug"),
        "state": row["state"],
        "volume_ml": request.get("volume_ml"),
        "rate_ml_min": request.get("rate_ml_min"),
        "delivered_ml": row["delivered_ml"],
        "started_utc": row["started_utc"],
        "ended_utc": row["ended_utc"],
        "duration_s": _duration(row["started_utc"], row["ended_utc"]),
        "pressure_mmhg": dict(zip(("min", "median", "max"), stats, strict=True)),
        "alarms": [dict(a) for a in alarms],
        "events": [
            {"t": e["t_utc"], "kind": e["kind"], **json.loads(e["detail_json"])} for e in events
        ],
    }


def _duration(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 1)


def to_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for item in report["injections"]:
        p = item["pressure_mmhg"]
        writer.writerow(
            {
                **{k: item.get(k) for k in CSV_FIELDS if k in item},
                "pressure_min_mmhg": p["min"],
                "pressure_median_mmhg": p["median"],
                "pressure_max_mmhg": p["max"],
                "alarm": "; ".join(f"{a['kind']}: {a['detail']}" for a in item["alarms"]),
                "actions": "; ".join(e["kind"] for e in item["events"]),
            }
        )
    return out.getvalue()


def to_html(report: dict[str, Any]) -> str:
    esc = html.escape
    rows = []
    for item in report["injections"]:
        p = item["pressure_mmhg"]
        alarms = "<br>".join(esc(f"{a['kind']}: {a['detail']}") for a in item["alarms"]) or "none"
        actions = "<br>".join(esc(f"{e['t'][11:19]} {e['kind']}") for e in item["events"])
        rows.append(
            f"<tr><td>{esc(str(item['target']))}</td><td>{esc(item['state'])}</td>"
            f"<td>{item['volume_ml']}</td><td>{item['delivered_ml']}</td>"
            f"<td>{item['duration_s']}</td><td>{p['min']} / {p['median']} / {p['max']}</td>"
            f"<td>{alarms}</td><td class=small>{actions}</td></tr>"
        )
    return f"""<!doctype html><html lang=en><head><meta charset=utf-8>
<title>injectctl procedure report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #888;padding:4px;vertical-align:top}}.small{{font-size:80%}}
@media print{{body{{margin:0}}}}</style></head><body>
<h1>Intratumoral injection: procedure report</h1>
<p>Generated {esc(report["generated_utc"])} from {esc(report["database"])}.
<strong>Research use only; not a cleared medical device.</strong></p>
<p>Record: {esc(report["record_chain"]["summary"])} (last hash
<code>{esc(report["record_chain"]["last_hash"])}</code>).</p>
<table><tr><th>target</th><th>state</th><th>planned mL</th><th>delivered mL</th>
<th>duration s</th><th>pressure min / median / max mmHg</th><th>alarms</th><th>actions</th></tr>
{"".join(rows)}</table></body></html>
"""
