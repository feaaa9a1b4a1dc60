"""A case leaves injectctl in the standards' own forms, each checked by its standard's
library or format: FHIR R5 by ``fhir.resources``, ODM 1.3.2 parsed by ``odmlib``, and the
REDCap import against its own data dictionary."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import odmlib.loader as odm_loader
import odmlib.odm_loader as odm_xml_loader
import pytest
from fhir.resources.bundle import Bundle

from controller.procedure.casebook import CaseBook
from controller.procedure.cases import CaseCreate, CasePlan, DrugPreparation, Lesion
from controller.records.actors import CONTROLLER, act_as
from controller.records.exports.render import export_case
from controller.records.recorder import Recorder

LIVER_VI = Lesion(
    label="liver VI",
    injected=True,
    organ="liver",
    size_mm=30,
    depth_mm=60,
    volume_ml=1.0,
    drugs=["tlr-agonist"],
    aliquots=2,
)
LIVER_II = Lesion(label="liver II", injected=False, organ="liver", size_mm=22, depth_mm=40)


@pytest.fixture
async def case(tmp_path: Path) -> AsyncIterator[tuple[CaseBook, str]]:
    """A case with a plan, a prepared drug and one completed injection of 0.98 mL that
    ada started, with its pressure trace, written as the controller writes them."""
    recorder = Recorder(tmp_path / "record.sqlite")
    await recorder.start()
    book = CaseBook(recorder)
    try:
        act_as("ada")
        case_id = (await book.create(CaseCreate(subject="HITIT-007", cycle=2, study="HIT-IT-01")))[
            "id"
        ]
        await book.plan(case_id, CasePlan(lesions=[LIVER_VI, LIVER_II]))
        now = datetime.now(UTC)
        await book.prepare(
            case_id,
            DrugPreparation(drug="tlr-agonist", lot="L7", prepared_utc=now, prepared_volume_ml=2),
        )
        request = {
            "volume_ml": 1.0,
            "rate_ml_min": 1.0,
            "syringe": "bd-luerlok-5ml",
            "needle": "22g-coaxial-150mm",
            "target": "liver VI",
            "drug": "tlr-agonist",
            "case_id": case_id,
            "lesion": "liver VI",
            "aliquots": 2,
        }
        await recorder.injection(
            {
                "id": "inj1",
                "session_id": "s",
                "created_utc": now.isoformat(),
                "state": "completed",
                "request_json": json.dumps(request),
                "started_utc": now.isoformat(),
                "ended_utc": now.isoformat(),
                "delivered_ml": 0.98,
                "before_fill_ml": 0.5,
                "alarm_json": None,
            }
        )
        await recorder.event("inj1", "started", {"fill_ml": 0.5}, 1.0)
        act_as(CONTROLLER)
        recorder.trace_into("inj1")
        for k in range(200):
            recorder.add_sample(k, k / 1000, 20.0 + k * 0.5, 0)
        await recorder.flush_trace()
        await recorder.event("inj1", "completed", {"delivered_ml": 0.98}, 2.0)
        yield book, case_id
    finally:
        await recorder.close()


async def exported(book: CaseBook, case_id: str, fmt: str) -> str:
    text, _ = await export_case(book, book.recorder.path, case_id, fmt)
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
