"""The case book on a real record: the sequential technique's next sector comes from the
same subject's history of the same lesion, never from another patient's lesion that
shares its label; a case's events carry their actors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.procedure.casebook import CaseBook, NoSuchCase
from controller.procedure.cases import CaseCreate, CasePlan, Lesion
from controller.procedure.checklist import Tick
from controller.procedure.plan import Technique
from controller.records.actors import act_as
from controller.records.recorder import Recorder

SEGMENT = Lesion(
    label="liver VI",
    injected=True,
    organ="liver",
    size_mm=40,
    depth_mm=50,
    technique=Technique.SEQUENTIAL,
    volume_ml=1.0,
    drugs=["mab-50"],
    sectors=4,
)


@pytest.fixture
async def book(tmp_path: Path) -> AsyncIterator[CaseBook]:
    recorder = Recorder(tmp_path / "record.sqlite")
    await recorder.start()
    try:
        yield CaseBook(recorder)
    finally:
        await recorder.close()


async def sequential_case(book: CaseBook, subject: str, cycle: int) -> str:
    case = await book.create(CaseCreate(subject=subject, cycle=cycle))
    await book.plan(case["id"], CasePlan(lesions=[SEGMENT]))
    return str(case["id"])


async def injected_sector(book: CaseBook, case_id: str, sector: int, state: str) -> None:
    """An injection row as the controller records it (its request carries the case)."""
    request = {"volume_ml": 1.0, "rate_ml_min": 1.0, "drug": "mab-50", "case_id": case_id}
    request |= {"lesion": SEGMENT.label, "sector": sector, "target": SEGMENT.label}
    row = {
        "id": f"{case_id}-{sector}",
        "session_id": "s",
        "created_utc": datetime.now(UTC).isoformat(),
        "state": state,
        "request_json": json.dumps(request),
        "started_utc": None,
        "ended_utc": None,
        "delivered_ml": 1.0,
        "before_fill_ml": 0.0,
        "alarm_json": None,
    }
    await book.recorder.injection(row)


def next_of(case: dict[str, object]) -> object:
    plan = case["plan"]
    assert isinstance(plan, dict)
    return plan["lesions"][0]["next"]


async def test_the_next_sector_follows_the_subject_not_the_label(book: CaseBook) -> None:
    first_a = await sequential_case(book, "SUBJ-A", 1)
    await injected_sector(book, first_a, 1, "completed")
    await injected_sector(book, await sequential_case(book, "SUBJ-B", 1), 3, "completed")
    second_a = await sequential_case(book, "SUBJ-A", 2)
    second_b = await sequential_case(book, "SUBJ-B", 2)
    assert next_of(await book.view(second_a)) == {"cycle": 2, "sector": 2}
    assert next_of(await book.view(second_b)) == {"cycle": 2, "sector": 4}
    fresh = await sequential_case(book, "SUBJ-C", 1)  # nobody's history
    assert next_of(await book.view(fresh)) == {"cycle": 1, "sector": 1}


async def test_a_cases_changes_are_events_with_their_actor(book: CaseBook) -> None:
    act_as("ada")
    case_id = await sequential_case(book, "SUBJ-A", 1)
    act_as("ben")
    case = await book.tick(case_id, Tick(item="tumour_board"))
    kinds = [(e["kind"], e["actor"]) for e in case["events"]]
    assert kinds == [("case_created", "ada"), ("case_planned", "ada"), ("checklist_ticked", "ben")]
    board = next(i for i in case["checklist"] if i["item"] == "tumour_board")
    assert board["done"] and board["by"] == "ben" and board["at"]
    assert case["status"] == "planned"
    with pytest.raises(ValueError, match="not on this case's checklist"):
        await book.tick(case_id, Tick(item="barrier_precautions"))  # no virus planned
    with pytest.raises(NoSuchCase):
        await book.view("nope")
