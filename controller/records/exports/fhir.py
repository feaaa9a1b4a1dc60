"""A case as an HL7 FHIR R5 Bundle (``collection``), validated by ``fhir.resources``.

Patient (the pseudonym only), Practitioner for each person in the record, Device for the
pump and the transducer, one Procedure for the case, one MedicationAdministration per
injection (``partOf`` the Procedure; dose the delivered volume, rate, the lesion as the
site; performers the person who started it and the pump), and one Observation per
injection for its line pressure (min, median, max), and one ImagingSelection per image
chosen for a lesion (its baseline key image, its needle-in-place series). Entries refer to
each other by ``urn:uuid`` full URLs, stable per case and resource, so a re-export names the same
resources. Codes are text where no code system has a fitting code; units are UCUM.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from fhir.resources.bundle import Bundle

from controller.records.exports.source import CaseExport

UCUM = "http://unitsofmeasure.org"
SYSTEM = "urn:injectctl"
ADMINISTRATION_STATUS = {
    "completed": "completed",
    "stopped": "stopped",
    "alarm": "stopped",
    "interrupted": "stopped",
    "running": "in-progress",
    "paused": "on-hold",
    "ready": "not-done",
}


def fhir_bundle(export: CaseExport) -> dict[str, Any]:
    """The Bundle as JSON-ready data; ``ValidationError`` if it is not valid FHIR R5."""
    case = export.case
    url = _urls(case["id"])
    people = export.people()
    resources: list[tuple[str, dict[str, Any]]] = [
        (url("patient"), _patient(case)),
        *((url(f"person/{name}"), _practitioner(name)) for name in people),
        (url("pump"), _device("New Era NE-1000 syringe pump", "syringe pump")),
        (
            url("transducer"),
            _device("disposable pressure transducer (PTB/1 bridge)", "pressure transducer"),
        ),
        (url("procedure"), _procedure(export, url, people)),
    ]
    for item in export.injections:
        administration = url(f"injection/{item['id']}")
        resources.append((administration, _administration(export, item, url)))
        if item["pressure_mmhg"]["max"] is not None:
            resources.append((url(f"pressure/{item['id']}"), _pressure(item, url, administration)))
    for k, chosen in enumerate(case.get("imaging", [])):
        resources.append((url(f"imaging/{k}"), _imaging_selection(chosen, url)))
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "entry": [{"fullUrl": full, "resource": body} for full, body in resources],
        }
    )
    data: dict[str, Any] = json.loads(bundle.model_dump_json(exclude_none=True))
    return data


def _imaging_selection(chosen: dict[str, Any], url: Any) -> dict[str, Any]:
    """A lesion's chosen image (key image) or series, by the archive's own UIDs."""
    selection: dict[str, Any] = {
        "resourceType": "ImagingSelection",
        "status": "available",
        "subject": _ref(url("patient")),
        "code": {"text": f"{chosen['role']} image"},
        "bodySite": {"concept": {"text": chosen["lesion"]}},
        "studyUid": chosen["study_uid"],
        "seriesUid": chosen["series_uid"],
        "issued": chosen["at"],
    }
    if chosen.get("by"):
        selection["performer"] = [{"actor": _ref(url(f"person/{chosen['by']}"))}]
    if chosen.get("sop_instance_uid"):
        selection["instance"] = [{"uid": chosen["sop_instance_uid"]}]
    return selection


def _urls(case_id: str) -> Any:
    def url(name: str) -> str:
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{SYSTEM}:case/{case_id}/{name}')}"

    return url


def _ref(full_url: str) -> dict[str, str]:
    return {"reference": full_url}


def _patient(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": f"{SYSTEM}:subject", "value": case["subject"]}],
        "meta": {"tag": [{"system": f"{SYSTEM}:note", "code": "pseudonym"}]},
    }


def _practitioner(name: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "identifier": [{"system": f"{SYSTEM}:user", "value": name}],
        "name": [{"text": name}],
    }


def _device(name: str, kind: str) -> dict[str, Any]:
    return {
        "resourceType": "Device",
        "displayName": name,
        "type": [{"text": kind}],
        "note": [{"text": "research use only; not a cleared medical device"}],
    }


def _procedure(export: CaseExport, url: Any, people: list[str]) -> dict[str, Any]:
    case = export.case
    lesions = case["plan"]["lesions"] if case["plan"] else []
    starts = [i["started_utc"] for i in export.injections if i["started_utc"]]
    ends = [i["ended_utc"] for i in export.injections if i["ended_utc"]]
    procedure: dict[str, Any] = {
        "resourceType": "Procedure",
        "identifier": [{"system": f"{SYSTEM}:case", "value": case["id"]}],
        "status": "completed" if case["status"] == "complete" else "in-progress",
        "code": {"text": "Image-guided intratumoral injection"},
        "subject": _ref(url("patient")),
        "bodySite": [
            {"text": f"{lesion['label']} ({lesion['organ']})"}
            for lesion in lesions
            if lesion["injected"]
        ],
        "performer": [{"actor": _ref(url(f"person/{name}"))} for name in people],
        "focalDevice": [{"manipulated": _ref(url("pump"))}],
        "note": [{"text": _plan_note(case, lesions)}],
    }
    if starts:
        procedure["occurrencePeriod"] = {
            "start": min(starts),
            **({"end": max(ends)} if ends else {}),
        }
    return procedure


def _plan_note(case: dict[str, Any], lesions: list[dict[str, Any]]) -> str:
    parts = [f"cycle {case['cycle']}"]
    for lesion in lesions:
        if lesion["injected"]:
            parts.append(
                f"{lesion['label']}: {lesion['technique']}, {lesion['volume_ml']} mL planned, "
                f"drugs in order {', '.join(lesion['drugs'])}"
            )
        else:
            parts.append(f"{lesion['label']}: not injected (watched)")
    return "; ".join(parts)


def _administration(export: CaseExport, item: dict[str, Any], url: Any) -> dict[str, Any]:
    performers = [{"actor": {"reference": _ref(url("pump"))}, "function": {"text": "pump"}}]
    person = export.actor_of(item["id"])
    if person and person != "controller":
        performers.insert(0, {"actor": {"reference": _ref(url(f"person/{person}"))}})
    when: dict[str, Any] = {"occurenceDateTime": item["created_utc"]}
    if item["started_utc"]:
        period = {
            "start": item["started_utc"],
            **({"end": item["ended_utc"]} if item["ended_utc"] else {}),
        }
        when = {"occurencePeriod": period}
    return {
        "resourceType": "MedicationAdministration",
        "identifier": [{"system": f"{SYSTEM}:injection", "value": item["id"]}],
        "status": ADMINISTRATION_STATUS.get(item["state"], "unknown"),
        "medication": {
            "concept": {
                "coding": [{"system": f"{SYSTEM}:drug", "code": item["drug"]}],
                "text": item["drug"],
            }
        },
        "subject": _ref(url("patient")),
        "partOf": [_ref(url("procedure"))],
        **when,
        "performer": performers,
        "device": [{"reference": _ref(url("pump"))}],
        "dosage": {
            "text": _dosage_text(item),
            "site": {"text": item["lesion"] or item["target"]},
            "route": {"text": "intratumoral"},
            "dose": {
                "value": round(float(item["delivered_ml"] or 0.0), 4),
                "unit": "mL",
                "system": UCUM,
                "code": "mL",
            },
            "rateQuantity": {
                "value": item["rate_ml_min"],
                "unit": "mL/min",
                "system": UCUM,
                "code": "mL/min",
            },
        },
    }


def _dosage_text(item: dict[str, Any]) -> str:
    technique = (
        f"sector {item['sector']}"
        if item.get("sector")
        else f"{item.get('aliquots') or 1} aliquot(s)"
    )
    return (
        f"{item['delivered_ml']} of {item['volume_ml']} mL planned "
        f"at {item['rate_ml_min']} mL/min, {technique}, "
        f"syringe {item['syringe']}, needle {item['needle']}"
    )


def _pressure(item: dict[str, Any], url: Any, administration: str) -> dict[str, Any]:
    def mmhg(value: float) -> dict[str, Any]:
        return {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}

    p = item["pressure_mmhg"]
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Injection line pressure during the injection"},
        "subject": _ref(url("patient")),
        "partOf": [_ref(administration)],
        "device": _ref(url("transducer")),
        "effectivePeriod": {
            "start": item["started_utc"],
            "end": item["ended_utc"] or item["started_utc"],
        },
        "component": [
            {"code": {"text": f"{name} pressure"}, "valueQuantity": mmhg(p[name])}
            for name in ("min", "median", "max")
        ],
    }
