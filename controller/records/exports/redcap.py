"""A case as a REDCap import: the data CSV and the data dictionary it fits.

The project is longitudinal with a repeating instrument: ``record_id`` (the subject's
pseudonym) first, ``redcap_event_name`` per cycle (``cycle_N_arm_1``), one ``procedure``
row per case and one ``injection`` row per injection (``redcap_repeat_instrument``,
``redcap_repeat_instance``). The dictionary's columns are REDCap's own; date-times use the
``datetime_seconds_ymd`` validation (``YYYY-MM-DD HH:MM:SS``, UTC).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from controller.records.exports.source import CaseExport

DICTIONARY_COLUMNS = (
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
)
SPECIAL = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance")
NUMBER, DATETIME, TEXT = "number", "datetime_seconds_ymd", ""
# (field, form, label, validation)
FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("record_id", "procedure", "Subject (pseudonym)", TEXT),
    ("case_id", "procedure", "injectctl case id", TEXT),
    ("study", "procedure", "Study", TEXT),
    ("cycle", "procedure", "Treatment cycle", NUMBER),
    ("case_status", "procedure", "Case status (planned, complete)", TEXT),
    ("lesions_injected", "procedure", "Lesions injected (labels)", TEXT),
    ("lesions_watched", "procedure", "Lesions not injected (watched)", TEXT),
    ("chain_verified", "procedure", "Record hash chain verified (1 yes, 0 no)", NUMBER),
    ("inj_id", "injection", "injectctl injection id", TEXT),
    ("inj_lesion", "injection", "Lesion", TEXT),
    ("inj_drug", "injection", "Drug (catalog id)", TEXT),
    ("inj_lot", "injection", "Drug lot", TEXT),
    ("inj_volume_planned_ml", "injection", "Volume planned (mL)", NUMBER),
    ("inj_volume_delivered_ml", "injection", "Volume delivered (mL)", NUMBER),
    ("inj_rate_ml_min", "injection", "Rate (mL/min)", NUMBER),
    ("inj_aliquots", "injection", "Aliquots (radial)", NUMBER),
    ("inj_sector", "injection", "Sector (sequential)", NUMBER),
    ("inj_state", "injection", "Outcome (completed, stopped, alarm, interrupted)", TEXT),
    ("inj_alarm", "injection", "Alarm, if any", TEXT),
    ("inj_started", "injection", "Started (UTC)", DATETIME),
    ("inj_ended", "injection", "Ended (UTC)", DATETIME),
    ("inj_p_max_mmhg", "injection", "Line pressure, maximum (mmHg)", NUMBER),
    ("inj_p_median_mmhg", "injection", "Line pressure, median (mmHg)", NUMBER),
    ("inj_operator", "injection", "Started by", TEXT),
)


def redcap_dictionary() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DICTIONARY_COLUMNS)
    for name, form, label, validation in FIELDS:
        row = dict.fromkeys(DICTIONARY_COLUMNS, "")
        row |= {
            "Variable / Field Name": name,
            "Form Name": form,
            "Field Type": "text",
            "Field Label": label,
            "Text Validation Type OR Show Slider Number": validation,
            "Identifier?": "y" if name == "record_id" else "",
        }
        writer.writerow(row.values())
    return out.getvalue()


def redcap_csv(export: CaseExport, chain_verified: bool) -> str:
    case = export.case
    columns = ["record_id", *SPECIAL, *(f for f, *_ in FIELDS if f != "record_id")]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    base = {"record_id": case["subject"], "redcap_event_name": f"cycle_{case['cycle']}_arm_1"}
    lesions = case["plan"]["lesions"] if case["plan"] else []
    writer.writerow(
        {
            **base,
            "case_id": case["id"],
            "study": case.get("study", ""),
            "cycle": case["cycle"],
            "case_status": case["status"],
            "lesions_injected": "; ".join(x["label"] for x in lesions if x["injected"]),
            "lesions_watched": "; ".join(x["label"] for x in lesions if not x["injected"]),
            "chain_verified": int(chain_verified),
        }
    )
    lots = {d["drug"]: d["lot"] for d in case["drugs"]}
    for k, item in enumerate(export.injections, 1):
        writer.writerow(
            {
                **base,
                **_injection_row(export, item, lots),
                "redcap_repeat_instrument": "injection",
                "redcap_repeat_instance": k,
            }
        )
    return out.getvalue()


def _injection_row(
    export: CaseExport, item: dict[str, Any], lots: dict[str, str]
) -> dict[str, Any]:
    p = item["pressure_mmhg"]
    return {
        "inj_id": item["id"],
        "inj_lesion": item["lesion"] or item["target"],
        "inj_drug": item["drug"],
        "inj_lot": lots.get(item["drug"], ""),
        "inj_volume_planned_ml": item["volume_ml"],
        "inj_volume_delivered_ml": round(float(item["delivered_ml"] or 0.0), 4),
        "inj_rate_ml_min": item["rate_ml_min"],
        "inj_aliquots": item.get("aliquots") or 1,
        "inj_sector": item.get("sector") or "",
        "inj_state": item["state"],
        "inj_alarm": item["alarms"][0]["kind"] if item["alarms"] else "",
        "inj_started": _datetime(item["started_utc"]),
        "inj_ended": _datetime(item["ended_utc"]),
        "inj_p_max_mmhg": "" if p["max"] is None else p["max"],
        "inj_p_median_mmhg": "" if p["median"] is None else p["median"],
        "inj_operator": export.actor_of(item["id"]) or "",
    }


def _datetime(iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
