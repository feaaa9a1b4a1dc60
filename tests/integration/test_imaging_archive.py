"""The imaging archive (issue 20) against a real Orthanc with its DICOMweb plugin, loaded
with synthetic CT: the subject's studies found over QIDO-RS, the images chosen kept with
the case, and the procedure written back as a Comprehensive SR over STOW-RS, read back
over WADO-RS, parsed by highdicom, with every image reference resolving in the archive."""

from __future__ import annotations

import io
import json
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from fhir.resources.bundle import Bundle
from pydicom import Dataset

from bench.server_process import free_port
from controller.config import ImagingConfig
from controller.imaging.archive_link import ArchiveLink
from controller.imaging.dicomweb import ArchiveError, DicomWeb
from controller.imaging.selection import ImageRole, ImageSelection
from controller.procedure.casebook import CaseBook, CaseRefused
from controller.records.actors import act_as
from controller.records.exports.render import export_case
from tests.support.orthanc import Archive, archive, ct_series
from tests.support.recorded_case import SUBJECT, case

__all__ = ["archive", "case"]  # the fixtures


def chosen(series: list[Dataset], role: ImageRole, *, key_image: bool) -> ImageSelection:
    first = series[0]
    return ImageSelection(
        lesion="liver VI",
        role=role,
        study_uid=first.StudyInstanceUID,
        series_uid=first.SeriesInstanceUID,
        sop_instance_uid=series[1].SOPInstanceUID if key_image else None,
    )


async def test_the_subjects_studies_are_listed_with_their_series_and_no_one_elses(
    archive: Archive,
) -> None:
    baseline = ct_series(SUBJECT, description="baseline")
    procedure = ct_series(SUBJECT, description="needle in place", series_number=2)
    await archive.upload(baseline + procedure + ct_series("HITIT-999", description="other"))
    link = ArchiveLink(ImagingConfig(dicomweb_url=archive.dicomweb_url))
    studies = await link.studies(SUBJECT)
    assert {s["study_uid"] for s in studies} == {
        baseline[0].StudyInstanceUID,
        procedure[0].StudyInstanceUID,
    }
    series = {x["description"]: x for s in studies for x in s["series"]}
    assert sorted(series) == ["baseline", "needle in place"]
    assert series["baseline"]["modality"] == "CT" and series["baseline"]["instances"] == 3
    assert await link.studies("HITIT-404") == []


async def test_the_procedure_sr_is_stored_read_back_and_its_references_resolve(
    archive: Archive, case: tuple[CaseBook, str]
) -> None:
    book, case_id = case
    baseline = ct_series(SUBJECT, description="baseline")
    procedure = ct_series(SUBJECT, description="needle in place", series_number=2)
    await archive.upload(baseline + procedure)
    act_as("bea")  # the radiologist choosing the images
    await book.select_image(case_id, chosen(baseline, ImageRole.BASELINE, key_image=True))
    await book.select_image(case_id, chosen(procedure, ImageRole.NEEDLE_IN_PLACE, key_image=False))
    config = ImagingConfig(dicomweb_url=archive.dicomweb_url)

    uids = await ArchiveLink(config).write_report(book, book.recorder.path, case_id)

    client = DicomWeb(config)
    try:
        raw = await client.retrieve(uids["study_uid"], uids["series_uid"], uids["sop_instance_uid"])
        sr = hd.sr.ComprehensiveSR.from_dataset(pydicom.dcmread(io.BytesIO(raw)))
        # in the needle-in-place study, the subject's own
        assert sr.StudyInstanceUID == procedure[0].StudyInstanceUID
        assert sr.PatientID == SUBJECT and sr.CompletionFlag == "COMPLETE"
        references = list(_image_references(sr))
        expected = {baseline[1].SOPInstanceUID} | {d.SOPInstanceUID for d in procedure}
        assert {uid for _, uid in references} == expected
        for study_uid, series_uid, sop_uid in _evidence(sr):
            found = await client.instance_metadata(study_uid, series_uid, sop_uid)
            assert found.SOPInstanceUID == sop_uid  # the reference resolves in the archive
        assert {uid for *_, uid in _evidence(sr)} == expected
    finally:
        await client.close()
    text = {item.ConceptNameCodeSequence[0].CodeMeaning: _value(item) for item in _walk(sr)}
    assert text["Lesion"] == "liver VI" and text["Drug and lot"] == "tlr-agonist, lot L7"
    assert text["Volume delivered"] == pytest.approx(0.98)
    view = await book.view(case_id)
    assert view["imaging_reports"][0]["sop_instance_uid"] == uids["sop_instance_uid"]
    assert [(x["role"], x["by"]) for x in view["imaging"]] == [
        ("baseline", "bea"),
        ("needle-in-place", "bea"),
    ]
    # the FHIR export carries the same references, valid R5
    fhir, _ = await export_case(book, book.recorder.path, case_id, "fhir")
    bundle = Bundle.model_validate_json(fhir)
    selections = [
        json.loads(e.resource.model_dump_json())
        for e in bundle.entry or []
        if e.resource is not None and e.resource.get_resource_type() == "ImagingSelection"
    ]
    assert {(s["seriesUid"], "instance" in s) for s in selections} == {
        (baseline[0].SeriesInstanceUID, True),
        (procedure[0].SeriesInstanceUID, False),
    }


async def test_an_image_for_a_lesion_not_in_the_plan_is_refused(
    case: tuple[CaseBook, str],
) -> None:
    book, case_id = case
    series = ct_series(SUBJECT, description="baseline")
    wrong = chosen(series, ImageRole.BASELINE, key_image=True).model_copy(update={"lesion": "lung"})
    with pytest.raises(CaseRefused, match="'lung' is not in the case's plan"):
        await book.select_image(case_id, wrong)


async def test_an_archive_that_is_not_there_says_what_to_check(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    link = ArchiveLink(ImagingConfig(dicomweb_url=url))
    with pytest.raises(ArchiveError, match=r"not reachable.*check \[imaging\] dicomweb_url"):
        await link.studies(SUBJECT)


def _walk(sr: Dataset):  # type: ignore[no-untyped-def]
    for item in sr.ContentSequence:
        yield item
        yield from _walk(item) if "ContentSequence" in item else ()


def _image_references(sr: Dataset):  # type: ignore[no-untyped-def]
    for item in _walk(sr):
        if item.ValueType == "IMAGE":
            reference = item.ReferencedSOPSequence[0]
            yield reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID


def _evidence(sr: Dataset):  # type: ignore[no-untyped-def]
    for sequence in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in sr.get(sequence, []):
            for series in study.ReferencedSeriesSequence:
                for instance in series.ReferencedSOPSequence:
                    yield (
                        study.StudyInstanceUID,
                        series.SeriesInstanceUID,
                        instance.ReferencedSOPInstanceUID,
                    )


def _value(item: Dataset) -> object:
    if item.ValueType == "TEXT":
        return item.TextValue
    if item.ValueType == "NUM":
        return float(item.MeasuredValueSequence[0].NumericValue)
    return item.ValueType
