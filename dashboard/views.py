"""JSON views of injections, live (from the controller) or recorded (from the database)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from fastapi import HTTPException

from controller.controller import Controller
from controller.injection import Injection


def find(controller: Controller, injection_id: str) -> Injection:
    injection = controller.injections.get(injection_id)
    if injection is None:
        raise HTTPException(404, f"no injection {injection_id}")
    return injection


def injection_view(injection: Injection) -> dict[str, Any]:
    alarm = None
    if injection.alarm is not None:
        alarm = {
            "kind": injection.alarm.kind,
            "at": injection.alarm_utc,
            "detail": injection.alarm.detail,
        }
    request = injection.request
    return {
        "id": injection.id,
        "state": str(injection.state),
        "delivered_ml": round(injection.delivered_ml, 4),
        "volume_ml": request.volume_ml,
        "rate_ml_min": request.rate_ml_min,
        "target": request.target,
        "drug": request.drug,
        "aliquots": request.aliquots,
        "cycle": request.cycle,
        "sector": request.sector,
        "pressure_limit_mmhg": injection.checked.pressure_limit_mmhg,
        "pressure_ceiling_mmhg": request.pressure_ceiling_mmhg,
        "rate_now_ml_min": injection.rate_now_ml_min,
        "fills_ml": list(injection.checked.fills_ml),
        "waiting_for": injection.waiting_for,
        "created": injection.created_utc,
        "started": injection.started_utc,
        "ended": injection.ended_utc,
        "alarm": alarm,
        "events": injection.events,
    }


def recorded_view(row: sqlite3.Row, events: list[sqlite3.Row] | None = None) -> dict[str, Any]:
    """An injection as the record holds it (earlier sessions included)."""
    request = json.loads(row["request_json"])
    view = {
        "id": row["id"],
        "state": row["state"],
        "delivered_ml": round(float(row["delivered_ml"] or 0.0), 4),
        "volume_ml": request.get("volume_ml"),
        "rate_ml_min": request.get("rate_ml_min"),
        "target": request.get("target"),
        "drug": request.get("drug"),
        "aliquots": request.get("aliquots", 1),
        "cycle": request.get("cycle"),
        "sector": request.get("sector"),
        "created": row["created_utc"],
        "started": row["started_utc"],
        "ended": row["ended_utc"],
        "alarm": json.loads(row["alarm_json"]) if row["alarm_json"] else None,
    }
    if events is not None:
        view["events"] = [
            {"t": e["t_utc"], **json.loads(e["detail_json"]), "kind": e["kind"]} for e in events
        ]
    return view
