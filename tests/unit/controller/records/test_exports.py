"""A case leaves injectctl in the standards' own forms, each checked by its standard's
library or format: FHIR R5 by ``fhir.resources``, ODM 1.3.2 parsed by ``odmlib``, and the
REDCap import against its own data dictionary."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import matplotlib.image
import odmlib.loader as odm_loader
import odmlib.odm_loader as odm_xml_loader
import pytest
from fhir.resources.bundle import Bundle

from controller.procedure.casebook import CaseBook
from controller.records.exports.render import export_case
from tests.support.recorded_case import case

__all__ = ["case"]  # the fixture


async def exported(book: CaseBook, case_id: str, fmt: str) -> str:
    text, _ = await export_case(book, book.recorder.path, case_id, fmt)
    assert isinstance(text, str)
    return text


async def test_the_fhir_bundle_is_valid_r5_and_links_the_injection_to_its_procedure(
    case: tuple[CaseBook, str],
) -> None:
    book, case_id = case
    bundle = Bundle.model_validate_json(await exported(book, case_id, "fhir"))
    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for entry in bundle.entry or []:
        assert entry.resource is not None and entry.fullUrl is not None
        resource = json.loads(entry.resource.model_dump_json())
        by_type.setdefault(resource["resourceType"], []).append((entry.fullUrl, resource))
    assert sorted(by_type) == [
        "Device",
        "MedicationAdministration",
        "Observation",
        "Patient",
        "Practitioner",
        "Procedure",
    ]
    [(procedure_url, _)] = by_type["Procedure"]
    [(_, data)] = by_type["MedicationAdministration"]
    assert data["partOf"][0]["reference"] == procedure_url and data["status"] == "completed"
    dose = {"value": 0.98, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}
    assert data["dosage"]["dose"] == dose and data["dosage"]["site"]["text"] == "liver VI"
    assert {p["name"][0]["text"] for _, p in by_type["Practitioner"]} == {"ada"}
    [(_, patient)] = by_type["Patient"]
    assert patient["identifier"][0]["value"] == "HITIT-007"
    [(_, pressure)] = by_type["Observation"]
    components = pressure["component"]
    assert [c["valueQuantity"]["code"] for c in components] == ["mm[Hg]"] * 3
    assert components[2]["valueQuantity"]["value"] == pytest.approx(20.0 + 199 * 0.5, abs=0.1)


async def test_the_odm_file_is_parsed_by_odmlib_with_its_audit_records(
    case: tuple[CaseBook, str],
) -> None:
    book, case_id = case
    loader = odm_loader.ODMLoader(odm_xml_loader.XMLODMLoader(model_package="odm_1_3_2"))
    loader.load_odm_string(await exported(book, case_id, "odm"))
    root = loader.root()
    assert root.ODMVersion == "1.3.2" and root.FileType == "Snapshot"
    subject = root.ClinicalData[0].SubjectData[0]
    assert subject.SubjectKey == "HITIT-007"
    event = subject.StudyEventData[0]
    assert event.StudyEventOID == "SE.CYCLE" and event.StudyEventRepeatKey == "2"
    procedure, injection = event.FormData
    assert procedure.FormOID == "F.PROCEDURE" and injection.FormRepeatKey == "1"
    items = {i.ItemOID: i for i in injection.ItemGroupData[0].ItemData}
    assert items["IT.INJ.VOLUME_DELIVERED_ML"].Value == "0.98"
    audit = items["IT.INJ.LESION"].AuditRecord
    assert audit.UserRef.UserOID == "USR.ada" and "completed" in audit.ReasonForChange._content
    assert {u.OID for u in root.AdminData[0].User} == {"USR.ada", "USR.controller"}


async def test_the_redcap_import_fits_its_data_dictionary(case: tuple[CaseBook, str]) -> None:
    book, case_id = case
    dictionary = list(
        csv.DictReader(io.StringIO(await exported(book, case_id, "redcap-dictionary")))
    )
    fields = {row["Variable / Field Name"]: row for row in dictionary}
    assert dictionary[0]["Variable / Field Name"] == "record_id"
    rows = list(csv.DictReader(io.StringIO(await exported(book, case_id, "redcap"))))
    header = list(rows[0])
    assert header[0] == "record_id"
    special = {"redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance"}
    assert set(header) - special == set(fields)  # every column is in the dictionary
    procedure, injection = rows
    assert procedure["redcap_event_name"] == injection["redcap_event_name"] == "cycle_2_arm_1"
    assert procedure["lesions_watched"] == "liver II" and procedure["chain_verified"] == "1"
    assert (
        injection["redcap_repeat_instrument"] == "injection"
        and injection["redcap_repeat_instance"] == "1"
    )
    assert injection["inj_lot"] == "L7" and injection["inj_operator"] == "ada"
    for row in rows:  # each value in its instrument and of its validation type
        instrument = row["redcap_repeat_instrument"] or "procedure"
        for name, value in row.items():
            if name in special or value == "":
                continue
            field = fields[name]
            assert name == "record_id" or field["Form Name"] == instrument, name
            kind = field["Text Validation Type OR Show Slider Number"]
            if kind == "number":
                float(value)
            elif kind == "datetime_seconds_ymd":
                assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", value), value


async def test_the_case_json_and_page_say_whether_the_record_verified(
    case: tuple[CaseBook, str],
) -> None:
    book, case_id = case
    view = json.loads(await exported(book, case_id, "json"))
    assert view["record_chain"]["verified"] is True
    assert "chain verified" in await exported(book, case_id, "html")


async def test_the_case_report_is_one_pdf_page_with_every_section_and_the_trace_drawn(
    case: tuple[CaseBook, str], tmp_path: Path
) -> None:
    """Rendered by poppler as a reader would: one A4 page, its sections' headings and the
    case's facts in its text, and ink on the page where the trace is drawn."""
    book, case_id = case
    pdf, media = await export_case(book, book.recorder.path, case_id, "pdf")
    assert media == "application/pdf" and isinstance(pdf, bytes) and pdf.startswith(b"%PDF")
    path = tmp_path / "case.pdf"
    path.write_bytes(pdf)
    info = await _run("pdfinfo", str(path))
    assert re.search(r"^Pages:\s+1$", info, re.M), info
    assert re.search(r"^Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)", info, re.M), info
    text = await _run("pdftotext", "-layout", str(path), "-")
    for heading in ("Plan", "Drugs prepared", "Checklist", "Injections", "Pressure", "Imaging"):
        assert re.search(rf"^\s*{heading}\s*$", text, re.M), f"{heading!r} not on the page"
    facts = ("HITIT-007", "cycle 2", "liver VI", "L7", "0.98", "ada", "chain verified")
    for fact in (*facts, "Technique", "liver VI: radial, 2 of 2 aliquots"):
        assert fact in text, f"{fact!r} not on the page"
    await _run("pdftoppm", "-png", "-r", "60", "-singlefile", str(path), str(tmp_path / "page"))
    page = matplotlib.image.imread(tmp_path / "page.png")
    assert page.shape[0] > page.shape[1] > 400  # portrait
    ink = page[..., :3].mean(axis=2) < 0.5
    lower_half = ink[page.shape[0] // 2 :]
    assert ink.mean() > 0.01 and lower_half.any()  # not blank, and drawn beyond the tables


async def _run(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()
