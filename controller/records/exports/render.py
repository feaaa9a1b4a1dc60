"""One entry for every way a case leaves injectctl: the API's export and the CLI's report
(``injectctl report --case``) both call ``export_case``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Literal

from controller.procedure.casebook import CaseBook
from controller.records.case_report import case_html
from controller.records.chain import verify
from controller.records.exports.fhir import fhir_bundle
from controller.records.exports.odm import odm_xml
from controller.records.exports.pdf import case_pdf
from controller.records.exports.redcap import redcap_csv, redcap_dictionary
from controller.records.exports.source import case_export, case_traces

ExportFormat = Literal["json", "html", "pdf", "fhir", "odm", "redcap", "redcap-dictionary"]
FORMATS: tuple[str, ...] = ("json", "html", "pdf", "fhir", "odm", "redcap", "redcap-dictionary")
MEDIA = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "fhir": "application/fhir+json",
    "odm": "application/xml",
    "redcap": "text/csv; charset=utf-8",
    "redcap-dictionary": "text/csv; charset=utf-8",
}


async def export_case(book: CaseBook, db: Path, case_id: str, fmt: str) -> tuple[str | bytes, str]:
    """(text, or bytes for ``pdf``; media type) of the case in this format; ``NoSuchCase``
    if there is none."""
    if fmt == "redcap-dictionary":
        return redcap_dictionary(), MEDIA[fmt]
    view = await book.view(case_id)
    chain = await asyncio.to_thread(verify, db)
    view["record_chain"] = {"verified": chain.verified, "summary": chain.summary()}
    if fmt == "json":
        return json.dumps(view, indent=2), MEDIA[fmt]
    if fmt == "html":
        return case_html(view), MEDIA[fmt]
    export = await asyncio.to_thread(case_export, db, view)
    if fmt == "pdf":
        traces = await asyncio.to_thread(case_traces, db, export)
        return await asyncio.to_thread(case_pdf, export, traces), MEDIA[fmt]
    if fmt == "fhir":
        return json.dumps(await asyncio.to_thread(fhir_bundle, export), indent=2), MEDIA[fmt]
    if fmt == "odm":
        return await asyncio.to_thread(odm_xml, export), MEDIA[fmt]
    if fmt == "redcap":
        return redcap_csv(export, chain.verified), MEDIA[fmt]
    raise ValueError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
