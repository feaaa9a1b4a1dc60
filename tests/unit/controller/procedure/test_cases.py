"""What a case's plan allows: each refusal the issue names, and what passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from controller.procedure.cases import (
    Asked,
    CasePlan,
    DrugPreparation,
    Given,
    Lesion,
    refusal,
)
from controller.procedure.catalog import load_drugs, load_needles

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
DRUGS, NEEDLES = load_drugs(), load_needles()
PLAN = CasePlan(
    lesions=[
        Lesion(
            label="liver VI",
            injected=True,
            organ="liver",
            size_mm=30,
            depth_mm=60,
            volume_ml=2.0,
            drugs=["tlr-agonist", "mab-50"],
            aliquots=2,
        ),
        Lesion(label="liver II", injected=False, organ="liver", size_mm=25, depth_mm=40),
    ]
)
READY = {
    drug: DrugPreparation(
        drug=drug, lot=f"L-{drug}", prepared_utc=NOW - timedelta(minutes=10), prepared_volume_ml=5
    )
    for drug in ("tlr-agonist", "mab-50")
}


def asked(
    lesion: str = "liver VI", drug: str = "tlr-agonist", ml: float = 1.0, needle: str = "22g-90mm"
) -> Asked:
    return Asked(lesion, DRUGS[drug], NEEDLES[needle], ml)


def given(drug: str, state: str = "completed", ml: float = 1.0, delivered: float = 1.0) -> Given:
    return Given("liver VI", drug, state, ml, delivered)


def test_the_first_drug_of_a_planned_lesion_within_its_volume_is_allowed() -> None:
    assert refusal(PLAN, asked(), [], READY, NOW) is None
    assert refusal(PLAN, asked(drug="mab-50"), [given("tlr-agonist")], READY, NOW) is None


@pytest.mark.parametrize(
    ("request_", "history", "why"),
    [
        (asked(lesion="liver II"), [], "planned as not injected"),
        (asked(lesion="lung 1"), [], "not in the case's plan"),
        (asked(drug="saline"), [], "not planned for lesion"),
        (asked(drug="mab-50"), [], "comes after 'tlr-agonist'"),
        # the first drug stopped with nothing delivered has not been given
        (asked(drug="mab-50"), [given("tlr-agonist", "stopped", 1.0, 0.0)], "comes after"),
        (asked(), [given("tlr-agonist"), given("mab-50")], "comes before 'mab-50'"),
        (asked(ml=1.5), [given("tlr-agonist", "completed", 1.0, 0.9)], "has left: 1.1 of 2"),
        # an injection not yet ended holds all it asked for
        (asked(ml=0.5), [given("tlr-agonist", "running", 1.8, 0.2)], "left: 0.2"),
        (asked(needle="18g-coaxial-150mm"), [], "is for a biopsy"),
    ],
)
def test_each_refusal_says_why(request_: Asked, history: list[Given], why: str) -> None:
    found = refusal(PLAN, request_, history, READY, NOW)
    assert found is not None and why in found, found


def test_a_drug_needs_its_preparation_and_its_stability_window() -> None:
    assert "no preparation recorded" in (refusal(PLAN, asked(), [], {}, NOW) or "")
    late = NOW + timedelta(minutes=240)  # the TLR agonist keeps 240 min from the catalog
    assert "past its stability window" in (refusal(PLAN, asked(), [], READY, late) or "")
    longer = READY["tlr-agonist"].model_copy(update={"stability_min": 600.0})
    assert refusal(PLAN, asked(), [], {"tlr-agonist": longer}, late) is None


def test_a_biopsy_allows_the_18g_needle_and_no_plan_allows_nothing() -> None:
    biopsied = CasePlan(lesions=[PLAN.lesions[0].model_copy(update={"biopsy": True})])
    assert refusal(biopsied, asked(needle="18g-coaxial-150mm"), [], READY, NOW) is None
    assert "no plan" in (refusal(None, asked(), [], READY, NOW) or "")


@pytest.mark.parametrize(
    ("lesion", "field"),
    [
        ({"injected": True, "volume_ml": 1.0, "drugs": []}, "drugs"),
        ({"injected": True, "volume_ml": 0.2, "drugs": ["mab-50"]}, "volume_ml"),
        ({"injected": False, "volume_ml": 1.0}, "not injected"),
        ({"injected": True, "volume_ml": 1.0, "drugs": ["mab-50", "mab-50"]}, "each drug once"),
    ],
)
def test_a_plan_that_cannot_be_given_is_refused_naming_the_field(
    lesion: dict[str, object], field: str
) -> None:
    base = {"label": "x", "organ": "liver", "size_mm": 20, "depth_mm": 30}
    with pytest.raises(ValidationError, match=field):
        Lesion.model_validate({**base, **lesion})
    with pytest.raises(ValidationError, match="unique"):
        CasePlan(lesions=[PLAN.lesions[1], PLAN.lesions[1]])


def test_the_review_warnings_are_given_not_enforced() -> None:
    risky = Lesion(
        label="seg VIII",
        injected=True,
        organ="liver",
        size_mm=8,
        depth_mm=120,
        volume_ml=1,
        drugs=["mab-50"],
        subcapsular=True,
        vessel_encasement_mm=5,
    )
    warnings = " | ".join(risky.warnings())
    for words in ("under 1 cm", "subcapsular", "vessel over 3 mm", "deep lesion"):
        assert words in warnings
