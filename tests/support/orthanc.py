"""A real Orthanc with its DICOMweb plugin for the tests, on free loopback ports with its own
storage, and synthetic CT series made with pydicom to load into it."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import date
from io import BytesIO
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydicom import Dataset, FileMetaDataset, dcmwrite
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from bench.server_process import ServerProcess, free_port

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
READY = b"Orthanc has started"


class Archive(ServerProcess):
    def __init__(self, folder: Path) -> None:
        self.http_port, self.dicom_port = free_port(), free_port()
        self.config = folder / "orthanc.json"
        storage = folder / "orthanc-db"
        self.config.write_text(
            json.dumps(
                {
                    "Name": "injectctl-test",
                    "HttpPort": self.http_port,
                    "DicomPort": self.dicom_port,
                    "StorageDirectory": str(storage),
                    "IndexDirectory": str(storage),
                    "RemoteAccessAllowed": False,
                    "AuthenticationEnabled": False,
                    "HttpServerEnabled": True,
                    "Plugins": [DICOMWEB_PLUGIN],
                    "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
                }
            )
        )
        super().__init__([ORTHANC, str(self.config)], READY, timeout_s=30.0, log_on_stdout=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    async def upload(self, datasets: list[Dataset]) -> None:
        """Through Orthanc's own REST API (not the DICOMweb under test)."""
        async with httpx.AsyncClient(timeout=10) as client:
            for dataset in datasets:
                out = BytesIO()
                dcmwrite(out, dataset, enforce_file_format=True)
                response = await client.post(f"{self.url}/instances", content=out.getvalue())
                response.raise_for_status()


def ct_series(
    patient_id: str,
    *,
    study_uid: str | None = None,
    description: str,
    slices: int = 3,
    study_date: date = date(2026, 12, 1),
    series_number: int = 1,
) -> list[Dataset]:
    """A small synthetic CT series (16x16 slices) of one subject."""
    study_uid = study_uid or generate_uid()
    series_uid, frame_uid = generate_uid(), generate_uid()
    return [
        _ct_slice(
            patient_id,
            (study_uid, series_uid, frame_uid),
            (description, series_number),
            k,
            study_date,
        )
        for k in range(1, slices + 1)
    ]


def _ct_slice(
    patient_id: str,
    uids: tuple[str, str, str],
    series: tuple[str, int],
    number: int,
    study_date: date,
) -> Dataset:
    study_uid, series_uid, frame_uid = uids
    description, series_number = series
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientID, ds.PatientName = patient_id, f"Subject^{patient_id}"
    ds.PatientBirthDate, ds.PatientSex = "", "O"
    ds.StudyDate = ds.SeriesDate = study_date.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = "101500"
    ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "A1", ""
    ds.StudyDescription = "CT abdomen, intratumoral injection"
    ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = description, series_number, number
    ds.Modality, ds.Manufacturer = "CT", "synthetic"
    ds.FrameOfReferenceUID = frame_uid
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 1.0
    ds.ImagePositionPatient = [0.0, 0.0, float(number)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelData = np.full((16, 16), 1000 + number, dtype=np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Archive]:
    assert shutil.which(ORTHANC), "Orthanc is needed (make test installs it)"
    running = Archive(tmp_path)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
