"""A DICOMweb client for the archive (QIDO-RS to search, WADO-RS to read metadata, STOW-RS
to store): the only module that speaks HTTP to it.

DICOMweb rather than DIMSE: one HTTP port through the hospital's firewall, JSON answers,
and the same interface on Orthanc, dcm4chee and the cloud archives. Every failure is an
``ArchiveError`` whose message says what to check (the address in ``[imaging]``, the
archive running, the credentials), never a bare traceback.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import httpx
from pydicom import Dataset, dcmwrite

from controller.config import ImagingConfig

DICOM_JSON = "application/dicom+json"
# DICOM tags of the QIDO answers we read (PS3.18 F.2: keys are the tags in hex)
TAGS = {
    "study_uid": "0020000D",
    "series_uid": "0020000E",
    "sop_uid": "00080018",
    "sop_class_uid": "00080016",
    "date": "00080020",
    "description": "00081030",
    "series_description": "0008103E",
    "modality": "00080060",
    "series_number": "00200011",
    "instances": "00201209",
    "patient_id": "00100020",
}


class ArchiveError(Exception):
    """The archive could not be reached or refused; the message says what to check."""


@dataclass(frozen=True)
class Series:
    study_uid: str
    series_uid: str
    modality: str
    number: int | None
    description: str
    instances: int | None


@dataclass(frozen=True)
class Study:
    study_uid: str
    date: str
    description: str
    series: tuple[Series, ...]


class DicomWeb:
    def __init__(self, config: ImagingConfig) -> None:
        if config.dicomweb_url is None:
            raise ArchiveError("no imaging archive configured: set [imaging] dicomweb_url")
        self.url = config.dicomweb_url.rstrip("/")
        auth = None
        if config.username is not None and config.password is not None:
            auth = httpx.BasicAuth(config.username, config.password.get_secret_value())
        self._client = httpx.AsyncClient(auth=auth, timeout=config.timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

    async def studies(self, patient_id: str) -> list[Study]:
        """The subject's studies, newest first, each with its series."""
        found = await self._get_json("/studies", {"PatientID": patient_id, "includefield": "all"})
        studies = []
        for item in found:
            study_uid = _value(item, "study_uid")
            series = await self.series(study_uid)
            studies.append(
                Study(study_uid, _value(item, "date"), _value(item, "description"), tuple(series))
            )
        return sorted(studies, key=lambda s: s.date, reverse=True)

    async def series(self, study_uid: str) -> list[Series]:
        found = await self._get_json(f"/studies/{study_uid}/series", {"includefield": "all"})
        return [
            Series(
                study_uid,
                _value(item, "series_uid"),
                _value(item, "modality"),
                _int(item, "series_number"),
                _value(item, "series_description"),
                _int(item, "instances"),
            )
            for item in found
        ]

    async def instances(self, study_uid: str, series_uid: str) -> list[Dataset]:
        """The series' instances as their four identifying attributes (a reference needs
        no more), in the archive's order."""
        found = await self._get_json(f"/studies/{study_uid}/series/{series_uid}/instances", {})
        datasets = []
        for item in found:
            ds = Dataset()
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.SOPClassUID, ds.SOPInstanceUID = (
                _value(item, "sop_class_uid"),
                _value(item, "sop_uid"),
            )
            datasets.append(ds)
        return datasets

    async def instance_metadata(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        """One instance's attributes (no pixel data), as a pydicom ``Dataset``."""
        path = f"/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/metadata"
        [item] = await self._get_json(path, {})
        return Dataset.from_json(item, bulk_data_uri_handler=_no_bulk_data)

    async def retrieve(self, study_uid: str, series_uid: str, sop_uid: str) -> bytes:
        """One instance as a DICOM file (WADO-RS, the first part of its multipart answer)."""
        path = f"/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
        response = await self._request(
            "GET", path, headers={"Accept": 'multipart/related; type="application/dicom"'}
        )
        return _first_part(response)

    async def store(self, datasets: Sequence[Dataset]) -> None:
        """STOW-RS: the datasets as one multipart/related request; any instance refused is
        an ``ArchiveError`` naming it."""
        boundary = uuid.uuid4().hex
        body = BytesIO()
        for dataset in datasets:
            part = BytesIO()
            dcmwrite(part, dataset, enforce_file_format=True)
            body.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
            body.write(part.getvalue())
            body.write(b"\r\n")
        body.write(f"--{boundary}--\r\n".encode())
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        response = await self._request(
            "POST",
            "/studies",
            content=body.getvalue(),
            headers={"Content-Type": content_type, "Accept": DICOM_JSON},
        )
        answer = response.json() if response.content else {}
        failed = answer.get("00081198", {}).get("Value", [])
        if failed:
            raise ArchiveError(f"the archive refused {len(failed)} instance(s): {failed}")

    async def _get_json(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        response = await self._request("GET", path, params=params, headers={"Accept": DICOM_JSON})
        if response.status_code == 204 or not response.content:
            return []
        found: list[dict[str, Any]] = response.json()
        return found

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, self.url + path, **kwargs)
        except httpx.HTTPError as exc:
            raise ArchiveError(
                f"imaging archive at {self.url} not reachable ({type(exc).__name__}: {exc}); "
                "check [imaging] dicomweb_url and that the archive is running"
            ) from exc
        if response.status_code in (401, 403):
            raise ArchiveError(
                f"imaging archive at {self.url} refused the credentials ({response.status_code}); "
                "check [imaging] username and password"
            )
        if response.status_code >= 400:
            raise ArchiveError(
                f"imaging archive answered {response.status_code} to {method} {path}: "
                f"{response.text[:200]}"
            )
        return response


def _value(item: dict[str, Any], key: str) -> str:
    values = item.get(TAGS[key], {}).get("Value", [])
    if not values:
        return ""
    value = values[0]
    if isinstance(value, dict):  # a person name
        return str(value.get("Alphabetic", ""))
    return str(value)


def _int(item: dict[str, Any], key: str) -> int | None:
    text = _value(item, key)
    return int(float(text)) if text else None


def _no_bulk_data(tag: str, vr: str, uri: str) -> None:
    """Metadata only: pixel data stays in the archive."""
    return None


def _first_part(response: httpx.Response) -> bytes:
    content_type = response.headers.get("content-type", "")
    marker = "boundary="
    if marker not in content_type:
        return response.content
    boundary = content_type.split(marker, 1)[1].split(";")[0].strip('"').encode()
    part = response.content.split(b"--" + boundary)[1]
    return part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
