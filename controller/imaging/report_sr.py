"""The procedure as a DICOM Comprehensive SR (highdicom), stored in the subject's study.

One container per injection: lesion, drug and lot, volume planned and delivered, rate,
technique, the pressure summary, alarms, and IMAGE references to the lesion's baseline key
image and needle-in-place series, so a reading physician opening the study sees where each
drug went. Concepts that no standard code names (the injection, its drug, its pressure
summary) use the local coding scheme ``99INJECTCTL`` (PS3.16 8.2: a private scheme's
designator starts with 99); units are UCUM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import highdicom as hd
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from controller.imaging.selection import ImageRole
from controller.records.case_report import NOTE
from controller.records.exports.source import CaseExport

LOCAL = "99INJECTCTL"
SR_SERIES_NUMBER = 900
CONTAINS = hd.sr.RelationshipTypeValues.CONTAINS


def local(value: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=value, scheme_designator=LOCAL, meaning=meaning)


REPORT = hd.sr.CodedConcept(value="28570-0", scheme_designator="LN", meaning="Procedure note")
INJECTION = local("INJ", "Intratumoral injection")
LESION = local("LES", "Lesion")
DRUG = local("DRUG", "Drug and lot")
PLANNED = local("VPLAN", "Volume planned")
DELIVERED = local("VDELIV", "Volume delivered")
RATE = local("RATE", "Infusion rate")
TECHNIQUE = local("TECH", "Technique")
PEAK = local("PMAX", "Peak line pressure")
MEDIAN = local("PMED", "Median line pressure")
OUTCOME = local("OUTC", "Outcome and alarms")
ROLES = {
    ImageRole.BASELINE: local("BASE", "Baseline key image"),
    ImageRole.NEEDLE_IN_PLACE: local("NEEDLE", "Needle in place"),
}
ML = hd.sr.CodedConcept(value="mL", scheme_designator="UCUM", meaning="milliliter")
ML_MIN = codes.UCUM.MilliliterPerMinute
MMHG = codes.UCUM.MillimetersHg


def procedure_sr(
    export: CaseExport, images: dict[tuple[str, str], list[Dataset]], evidence: Sequence[Dataset]
) -> hd.sr.ComprehensiveSR:
    """The report. ``images``: (lesion, role) -> the instances chosen (their attributes);
    ``evidence``: every one of them, the first with the patient and study attributes the
    SR takes on."""
    root = hd.sr.ContainerContentItem(name=REPORT, template_id=None)
    root.ContentSequence = hd.sr.ContentSequence(
        [_text(local("CASE", "Case"), _case_line(export))]
        + [_injection(item, export, images) for item in export.injections],
        is_root=False,
    )
    return hd.sr.ComprehensiveSR(
        evidence=list(evidence),
        content=root,
        series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="injectctl",
        is_complete=True,
        series_description="injectctl procedure report",
    )


def _case_line(export: CaseExport) -> str:
    case = export.case
    chain = case.get("record_chain", {}).get("summary", "record chain not verified")
    study = case.get("study") or "-"
    return f"case {case['id']}, cycle {case['cycle']}, study {study}; {chain}. {NOTE}"


def _injection(
    item: dict[str, Any], export: CaseExport, images: dict[tuple[str, str], list[Dataset]]
) -> hd.sr.ContainerContentItem:
    lesion = str(item.get("lesion") or item.get("target") or "-")
    lots = {d["drug"]: d["lot"] for d in export.case.get("drugs", [])}
    drug = str(item.get("drug") or "")
    pressure = item["pressure_mmhg"]
    alarms = "; ".join(f"{a['kind']}: {a['detail']}" for a in item["alarms"]) or "no alarm"
    technique = item.get("sector") or f"{item.get('aliquots') or 1} aliquot(s)"
    children: list[hd.sr.ContentItem] = [
        _text(LESION, lesion),
        _text(DRUG, f"{drug}, lot {lots.get(drug, 'not recorded')}"),
        _num(PLANNED, item.get("volume_ml"), ML),
        _num(DELIVERED, item.get("delivered_ml"), ML),
        _num(RATE, item.get("rate_ml_min"), ML_MIN),
        _text(TECHNIQUE, str(technique)),
        _num(MEDIAN, pressure["median"], MMHG),
        _num(PEAK, pressure["max"], MMHG),
        _text(OUTCOME, f"{item['state']}; {alarms}"[:1024]),
    ]
    for role, concept in ROLES.items():
        for dataset in images.get((lesion, role.value), []):
            children.append(
                hd.sr.ImageContentItem(
                    name=concept,
                    referenced_sop_class_uid=dataset.SOPClassUID,
                    referenced_sop_instance_uid=dataset.SOPInstanceUID,
                    relationship_type=CONTAINS,
                )
            )
    container = hd.sr.ContainerContentItem(name=INJECTION, relationship_type=CONTAINS)
    container.ContentSequence = hd.sr.ContentSequence(
        [c for c in children if c is not None], is_root=False
    )
    return container


def _text(name: hd.sr.CodedConcept, value: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(name=name, value=value or "-", relationship_type=CONTAINS)


def _num(name: hd.sr.CodedConcept, value: Any, unit: Any) -> hd.sr.ContentItem:
    if value is None:
        return _text(name, "not recorded")
    return hd.sr.NumContentItem(
        name=name, value=float(value), unit=unit, relationship_type=CONTAINS
    )
