"""A case as CDISC ODM 1.3.2 ClinicalData, built and serialised with ``odmlib``.

One SubjectData (the pseudonym), one StudyEventData per cycle (``SE.CYCLE``, repeat key the
cycle), a ``F.PROCEDURE`` form for the case and its plan, and one ``F.INJECTION`` form per
injection (repeat key its order), each item with an AuditRecord: who (a User in the
AdminData), where (this controller), when, and why (the event that set it). The OIDs are
the ones the trial's metadata defines for this form set (``docs/exports.md``); the file
carries the clinical data only (Granularity ``SingleSubject``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import odmlib.odm_1_3_2.model as ODM

from controller.records.exports.source import CaseExport

LOCATION = "LOC.INJECTCTL"
METADATA = "MDV.INJECTCTL.1"
INJECTION_ITEMS = (
    ("IT.INJ.ID", "id"),
    ("IT.INJ.LESION", "lesion"),
    ("IT.INJ.DRUG", "drug"),
    ("IT.INJ.VOLUME_PLANNED_ML", "volume_ml"),
    ("IT.INJ.VOLUME_DELIVERED_ML", "delivered_ml"),
    ("IT.INJ.RATE_ML_MIN", "rate_ml_min"),
    ("IT.INJ.ALIQUOTS", "aliquots"),
    ("IT.INJ.SECTOR", "sector"),
    ("IT.INJ.SYRINGE", "syringe"),
    ("IT.INJ.NEEDLE", "needle"),
    ("IT.INJ.STATE", "state"),
    ("IT.INJ.STARTED", "started_utc"),
    ("IT.INJ.ENDED", "ended_utc"),
)


def odm_xml(export: CaseExport, study_oid: str | None = None) -> str:
    case = export.case
    study = study_oid or _oid("ST", case.get("study") or "INJECTCTL")
    now = _stamp(datetime.now(UTC).isoformat())
    people = sorted({*export.people(), "controller"})
    root = ODM.ODM(
        FileOID=_oid("F", f"{case['id']}.{now}"),
        FileType="Snapshot",
        Granularity="SingleSubject",
        CreationDateTime=now,
        ODMVersion="1.3.2",
        Originator="injectctl",
        SourceSystem="injectctl",
        SourceSystemVersion="0.1.0",
    )
    root.AdminData.append(_admin(study, people, now[:10]))
    clinical = ODM.ClinicalData(StudyOID=study, MetaDataVersionOID=METADATA)
    subject = ODM.SubjectData(SubjectKey=case["subject"])
    event = ODM.StudyEventData(StudyEventOID="SE.CYCLE", StudyEventRepeatKey=str(case["cycle"]))
    event.FormData.append(_procedure_form(case))
    for k, item in enumerate(export.injections, 1):
        event.FormData.append(_injection_form(export, k, item))
    subject.StudyEventData.append(event)
    clinical.SubjectData.append(subject)
    root.ClinicalData.append(clinical)
    return str(root.to_xml_string())


def _oid(prefix: str, text: str) -> str:
    return f"{prefix}.{re.sub(r'[^A-Za-z0-9._-]', '_', text)}"


def _stamp(iso: str) -> str:
    """ISO 8601 to the second with its offset, as ODM's DateTimeStamp takes it."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _admin(study: str, people: list[str], date: str) -> Any:
    admin = ODM.AdminData(StudyOID=study)
    for name in people:
        user = ODM.User(OID=_oid("USR", name))
        user.LoginName = ODM.LoginName(_content=name)
        admin.User.append(user)
    location = ODM.Location(OID=LOCATION, Name="injectctl controller")
    location.MetaDataVersionRef.append(
        ODM.MetaDataVersionRef(StudyOID=study, MetaDataVersionOID=METADATA, EffectiveDate=date)
    )
    admin.Location.append(location)
    return admin


def _audit(who: str, when: str, why: str) -> Any:
    return ODM.AuditRecord(
        UserRef=ODM.UserRef(UserOID=_oid("USR", who)),
        LocationRef=ODM.LocationRef(LocationOID=LOCATION),
        DateTimeStamp=ODM.DateTimeStamp(_content=_stamp(when)),
        ReasonForChange=ODM.ReasonForChange(_content=why),
    )


def _group(oid: str, values: list[tuple[str, Any]], audit: Any) -> Any:
    group = ODM.ItemGroupData(ItemGroupOID=oid)
    for item_oid, value in values:
        if value is None or value == "":
            continue
        group.ItemData.append(ODM.ItemData(ItemOID=item_oid, Value=str(value), AuditRecord=audit))
    return group


def _procedure_form(case: dict[str, Any]) -> Any:
    created = next((e for e in case["events"] if e["kind"] == "case_created"), None)
    who, when = (created["actor"], created["t"]) if created else ("controller", case["created_utc"])
    form = ODM.FormData(FormOID="F.PROCEDURE")
    lesions = case["plan"]["lesions"] if case["plan"] else []
    values = [
        ("IT.CASE.ID", case["id"]),
        ("IT.CASE.STATUS", case["status"]),
        ("IT.CASE.LESIONS_INJECTED", ", ".join(x["label"] for x in lesions if x["injected"])),
        ("IT.CASE.LESIONS_WATCHED", ", ".join(x["label"] for x in lesions if not x["injected"])),
    ]
    form.ItemGroupData.append(_group("IG.PROCEDURE", values, _audit(who, when, "case_created")))
    return form


def _injection_form(export: CaseExport, k: int, item: dict[str, Any]) -> Any:
    who = export.actor_of(item["id"]) or "controller"
    when = item["ended_utc"] or item["started_utc"] or item["created_utc"]
    why = f"injection {item['state']}" + (
        f": {item['alarms'][0]['kind']}" if item["alarms"] else ""
    )
    form = ODM.FormData(FormOID="F.INJECTION", FormRepeatKey=str(k))
    values = [(oid, item.get(key)) for oid, key in INJECTION_ITEMS]
    p = item["pressure_mmhg"]
    values += [
        ("IT.INJ.P_MIN_MMHG", p["min"]),
        ("IT.INJ.P_MEDIAN_MMHG", p["median"]),
        ("IT.INJ.P_MAX_MMHG", p["max"]),
    ]
    form.ItemGroupData.append(_group("IG.INJECTION", values, _audit(who, when, why)))
    return form
