"""The case's side of the archive: the subject's studies to choose from, and the procedure
written back as a structured report referencing the images chosen.

Called from the API; every archive call is awaited off the control path (the controller
never waits on the archive), and a failure is an ``ArchiveError`` the API answers with 502.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from io import BytesIO
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmwrite

from controller.config import ImagingConfig
from controller.imaging.dicomweb import ArchiveError, DicomWeb
from controller.imaging.report_sr import procedure_sr
from controller.imaging.selection import ImageRole
from controller.procedure.casebook import CaseBook
from controller.records.chain import verify
from controller.records.exports.source import case_export


class ArchiveLink:
    def __init__(self, config: ImagingConfig) -> None:
        self.config = config

    @property
    def configured(self) -> bool:
        return self.config.dicomweb_url is not None

    async def studies(self, subject: str) -> list[dict[str, Any]]:
        """The subject's studies in the archive (newest first) with their series."""
        client = DicomWeb(self.config)
        try:
            return [asdict(study) for study in await client.studies(subject)]
        finally:
            await client.close()

    async def write_report(self, book: CaseBook, db: Path, case_id: str) -> dict[str, str]:
        """Build the SR from the record, store it (STOW-RS), record its UIDs with the case."""
        view = await book.view(case_id)
        if not view["imaging"]:
            raise ArchiveError("choose the lesions' images first (POST /cases/{id}/imaging)")
        chain = await asyncio.to_thread(verify, db)
        view["record_chain"] = {"verified": chain.verified, "summary": chain.summary()}
        export = await asyncio.to_thread(case_export, db, view)
        client = DicomWeb(self.config)
        try:
            images, evidence = await _chosen_images(client, view["imaging"])
            sr = await asyncio.to_thread(procedure_sr, export, images, evidence)
            await client.store([sr])
        finally:
            await client.close()
        uids = {
            "study_uid": str(sr.StudyInstanceUID),
            "series_uid": str(sr.SeriesInstanceUID),
            "sop_instance_uid": str(sr.SOPInstanceUID),
        }
        await book.record_report(case_id, uids)
        return uids


async def _chosen_images(
    client: DicomWeb, chosen: list[dict[str, Any]]
) -> tuple[dict[tuple[str, str], list[Dataset]], list[Dataset]]:
    """Each choice's instances, and the evidence list with a full instance first (the SR
    takes its patient and study from it: the needle-in-place study if there is one)."""
    images: dict[tuple[str, str], list[Dataset]] = {}
    for item in chosen:
        if item["sop_instance_uid"]:
            found = [
                await client.instance_metadata(
                    item["study_uid"], item["series_uid"], item["sop_instance_uid"]
                )
            ]
        else:
            found = await client.instances(item["study_uid"], item["series_uid"])
        if not found:
            raise ArchiveError(
                f"the archive has no instances of series {item['series_uid']} chosen for "
                f"{item['lesion']} ({item['role']}); choose again"
            )
        images[(item["lesion"], item["role"])] = found
    order = sorted(chosen, key=lambda c: c["role"] != ImageRole.NEEDLE_IN_PLACE.value)
    first = images[(order[0]["lesion"], order[0]["role"])][0]
    head = await client.instance_metadata(
        str(first.StudyInstanceUID), str(first.SeriesInstanceUID), str(first.SOPInstanceUID)
    )
    rest = [
        d for group in images.values() for d in group if d.SOPInstanceUID != head.SOPInstanceUID
    ]
    return images, [head, *rest]


def sr_bytes(dataset: Dataset) -> bytes:
    out = BytesIO()
    dcmwrite(out, dataset, enforce_file_format=True)
    return out.getvalue()
