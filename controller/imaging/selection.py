"""The images chosen for a lesion in a cycle: its baseline key image and the series with
the needle in place (the review's advice: a tagged image of each cycle's baseline and a
volume acquisition with the needle in place, so every physician knows where the drug went
and intratumoral RECIST can follow injected and non-injected lesions)."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

UID = r"^[0-9]+(\.[0-9]+)*$"
SELECTED = "image_selected"
SR_STORED = "imaging_report_stored"


class ImageRole(enum.StrEnum):
    BASELINE = "baseline"  # the cycle's baseline key image of the lesion
    NEEDLE_IN_PLACE = "needle-in-place"  # the acquisition with the needle in the lesion


class ImageSelection(BaseModel):
    """POST /cases/{id}/imaging: a series (and for a key image, the instance) for a lesion."""

    model_config = ConfigDict(extra="forbid")
    lesion: str = Field(min_length=1, max_length=64)
    role: ImageRole
    study_uid: str = Field(pattern=UID, max_length=64)
    series_uid: str = Field(pattern=UID, max_length=64)
    sop_instance_uid: str | None = Field(
        default=None, pattern=UID, max_length=64, description="the key image; none: the series"
    )
    description: str = Field(default="", max_length=128)


def selections(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last choice for each lesion and role, in the order first chosen, with who chose
    it and when (``events``: the case's events as the case book views them)."""
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        if event["kind"] == SELECTED:
            item = ImageSelection.model_validate(
                {k: event[k] for k in ImageSelection.model_fields if k in event}
            ).model_dump(mode="json")
            chosen[(item["lesion"], item["role"])] = {
                **item,
                "by": event["actor"],
                "at": event["t"],
            }
    return list(chosen.values())


def reports(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The structured reports written to the archive for this case, oldest first."""
    fields = ("study_uid", "series_uid", "sop_instance_uid")
    return [
        {**{k: event.get(k) for k in fields}, "by": event["actor"], "at": event["t"]}
        for event in events
        if event["kind"] == SR_STORED
    ]
