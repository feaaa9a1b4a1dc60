"""The procedure checklist of the review's Table 1, item by item.

Pre-procedure and per-procedure items must each be ticked, by a named person at a time
(the record keeps both), before a case's injection may start; the post-procedure items
complete the case. Barrier precautions appear only when the plan has a virotherapy drug.
A tick is an event in the record; the checklist's state is read back from those events,
so it cannot disagree with them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TICKED = "checklist_ticked"


class Phase(enum.StrEnum):
    PRE = "pre"
    PER = "per"
    POST = "post"


@dataclass(frozen=True)
class Item:
    key: str
    phase: Phase
    text: str
    virotherapy_only: bool = False


ITEMS = (
    Item("tumour_board", Phase.PRE, "case discussed at the multidisciplinary tumour board"),
    Item("imaging_workup", Phase.PRE, "imaging work-up of the target lesions done"),
    Item("targets_planned", Phase.PRE, "injected and non-injected lesions planned"),
    Item("prescription", Phase.PRE, "prescription with dose and volume (0.5-10 mL per lesion)"),
    Item("imaging_available", Phase.PER, "guidance imaging (ultrasound or CT) available"),
    Item("luer_lock", Phase.PER, "Luer-lock syringes (no larger than 5 mL with a 22G needle)"),
    Item("needle", Phase.PER, "22G coaxial needle (17-18G only with a biopsy)"),
    Item("pain_management", Phase.PER, "pain management in place"),
    Item("contamination", Phase.PER, "contamination protection in place"),
    Item(
        "barrier_precautions",
        Phase.PER,
        "virotherapy barrier precautions (gowns, eye protection, waste handling)",
        virotherapy_only=True,
    ),
    Item("report_ready", Phase.PER, "standardised report ready: images, labelling, CRF"),
    Item("immediate_imaging", Phase.POST, "immediate post-procedure imaging done"),
    Item("adverse_events", Phase.POST, "observed for procedure- and drug-related adverse events"),
    Item(
        "follow_up",
        Phase.POST,
        "follow-up planned (intratumoral RECIST of injected and non-injected lesions)",
    ),
)
KEYS = frozenset(item.key for item in ITEMS)


class Tick(BaseModel):
    """POST /cases/{id}/checklist: one item ticked (or unticked) by the caller."""

    model_config = ConfigDict(extra="forbid")

    item: str = Field(min_length=1, max_length=40)
    done: bool = True
    note: str = Field(default="", max_length=500)


def items_for(virotherapy: bool) -> list[Item]:
    return [item for item in ITEMS if virotherapy or not item.virotherapy_only]


def state(ticks: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last tick of each item: done, by whom, when, the note."""
    latest: dict[str, dict[str, Any]] = {}
    for tick in ticks:
        latest[tick["item"]] = {
            "done": bool(tick["done"]),
            "by": tick["actor"],
            "at": tick["t_utc"],
            "note": tick.get("note", ""),
        }
    return latest


def missing(
    items: Sequence[Item], ticked: dict[str, dict[str, Any]], phases: set[Phase]
) -> list[str]:
    """The items of these phases not (or no longer) ticked, in their words."""
    return [
        f"{item.phase}-procedure: {item.text}"
        for item in items
        if item.phase in phases and not ticked.get(item.key, {}).get("done", False)
    ]


def view(items: Sequence[Item], ticked: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"item": i.key, "phase": str(i.phase), "text": i.text, **ticked.get(i.key, {"done": False})}
        for i in items
    ]
