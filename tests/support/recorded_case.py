"""A case as the record holds it after a procedure: created by ada, planned (one injected
and one non-injected lesion), its drug prepared, and one completed injection of 0.98 mL with
its pressure trace, written through the real ``Recorder`` as the controller writes them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.procedure.casebook import CaseBook
from controller.procedure.cases import CaseCreate, CasePlan, DrugPreparation, Lesion
from controller.records.actors import CONTROLLER, act_as
from controller.records.recorder import Recorder

SUBJECT = "HITIT-007"

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
        case_id = (await book.create(CaseCreate(subject=SUBJECT, cycle=2, study="HIT-IT-01")))["id"]
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
