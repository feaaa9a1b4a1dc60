"""Imaging (issue 20): the subject's studies in the hospital's archive to choose from, the
images chosen for each lesion, and the procedure written back as a DICOM SR. The archive's
address is ``[imaging] dicomweb_url`` in the config; without it these answer 409 saying so
(a state of this server's configuration, not a failure: no 5xx), and an archive that cannot
be reached or refuses answers 502 with what to check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from controller.imaging.archive_link import ArchiveLink
from controller.imaging.dicomweb import ArchiveError
from controller.imaging.selection import ImageSelection
from controller.procedure.casebook import CaseBook
from dashboard.runtime import Runtime

NOT_CONFIGURED = "no imaging archive configured: set [imaging] dicomweb_url in the config file"


def add_imaging_routes(api: APIRouter, rt: Runtime, reads: list[Any], changes: list[Any]) -> None:
    link = ArchiveLink(rt.settings.config.imaging)

    def book() -> CaseBook:
        assert rt.cases is not None, "runtime not started"
        return rt.cases

    def archive() -> ArchiveLink:
        if not link.configured:
            raise HTTPException(409, NOT_CONFIGURED)
        return link

    @api.get("/cases/{case_id}/studies", dependencies=reads)
    async def studies(case_id: str) -> list[dict[str, Any]]:
        """The case's subject's studies in the archive (QIDO-RS), newest first, with their
        series: what the page offers for each lesion's baseline and needle-in-place."""
        subject = (await book().view(case_id))["subject"]
        try:
            return await archive().studies(subject)
        except ArchiveError as exc:
            raise HTTPException(502, str(exc)) from exc

    @api.post("/cases/{case_id}/imaging", dependencies=changes)
    async def select(case_id: str, body: ImageSelection) -> dict[str, Any]:
        """A lesion's baseline key image or needle-in-place series, kept with the case."""
        return await book().select_image(case_id, body)

    @api.post("/cases/{case_id}/imaging/report", dependencies=changes)
    async def write_report(case_id: str) -> dict[str, str]:
        """The procedure as a DICOM Comprehensive SR referencing the chosen images, stored
        in the subject's study (STOW-RS); its UIDs are recorded with the case."""
        await book().view(case_id)  # 404 for a case that does not exist, first
        try:
            return await archive().write_report(book(), rt.settings.db, case_id)
        except ArchiveError as exc:
            raise HTTPException(502, str(exc)) from exc
