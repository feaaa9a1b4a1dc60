"""The case report on one printable A4 page (PDF), for the case report form's binder.

Drawn with matplotlib's PDF backend on a ``Figure`` of its own (no pyplot, so no global
state and safe in a worker thread): subject, cycle, plan, drugs with lots, the checklist
with names and times, per injection the drug, volume planned and delivered, rate,
technique, pressure summary and alarms, every injection's pressure trace on one plot, the
imaging references, and whether the record's hash chain verified. One page whatever the
case: a table longer than its space says how many rows it left out.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_pdf import FigureCanvasPdf
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from controller.records.case_report import NOTE
from controller.records.exports.source import CaseExport, Trace

A4_IN = (8.27, 11.69)
FONT_PT = 6.5
ROW_IN = 0.13  # one table row at FONT_PT
MAX_FACES = 6  # lesions drawn side by side
MAX_ROWS = {"plan": 8, "drugs": 4, "checklist": 14, "injections": 10, "imaging": 5}


def case_pdf(export: CaseExport, traces: dict[str, Trace]) -> bytes:
    """The page as PDF bytes. ``traces``: injection id -> (t_s, pressure_mmhg)."""
    figure = Figure(figsize=A4_IN)
    FigureCanvasPdf(figure)
    page = _Page(figure)
    case = export.case
    page.title(f"Case {case['subject']}, cycle {case['cycle']}")
    page.line(
        f"Study {case.get('study') or '-'}, visit {case.get('visit') or '-'}, date "
        f"{case.get('date') or '-'}; case {case['id']}, status {case['status']}. {NOTE}"
    )
    page.section("Plan", *_plan_rows(case), key="plan")
    page.technique("Technique (each injected lesion as a clock face, 12 o'clock up)", export)
    page.section("Drugs prepared", *_drug_rows(case), key="drugs")
    page.section("Checklist", *_checklist_rows(case), key="checklist")
    page.section("Injections", *_injection_rows(export), key="injections")
    page.trace("Pressure", traces, export)
    page.section("Imaging", *_imaging_rows(case), key="imaging")
    chain = case.get("record_chain", {})
    page.section("Record", ["hash chain"], [[chain.get("summary", "not verified")]], key="record")
    out = io.BytesIO()
    figure.savefig(out, format="pdf", metadata={"Title": f"injectctl case {case['id']}"})
    return out.getvalue()


class _Page:
    """Lays sections down the page from the top, in inches from the top edge."""

    def __init__(self, figure: Figure) -> None:
        self.figure = figure
        self.y_in = 0.5

    def _y(self) -> float:
        return 1.0 - self.y_in / A4_IN[1]

    def title(self, text: str) -> None:
        self.figure.text(0.06, self._y(), text, fontsize=14, weight="bold", va="top")
        self.y_in += 0.3

    def line(self, text: str) -> None:
        self.figure.text(0.06, self._y(), text, fontsize=FONT_PT, va="top", wrap=True)
        self.y_in += 0.25

    def section(
        self, heading: str, columns: Sequence[str], rows: list[list[str]], *, key: str
    ) -> None:
        self.figure.text(0.06, self._y(), heading, fontsize=9, weight="bold", va="top")
        self.y_in += 0.17
        limit = MAX_ROWS.get(key, len(rows))
        shown = rows[:limit] or [["none recorded"] + [""] * (len(columns) - 1)]
        if len(rows) > limit:
            shown = [*shown, [f"... and {len(rows) - limit} more rows (see the HTML report)"]]
            shown[-1] += [""] * (len(columns) - 1)
        height_in = ROW_IN * (len(shown) + 1)
        axes = self.figure.add_axes(
            (0.06, self._y() - height_in / A4_IN[1], 0.88, height_in / A4_IN[1])
        )
        axes.axis("off")
        table = axes.table(
            cellText=shown,
            colLabels=list(columns),
            colWidths=_widths(columns, shown),
            cellLoc="left",
            # the rows share the height laid out for them
            bbox=Bbox.from_bounds(0.0, 0.0, 1.0, 1.0),
        )
        table.auto_set_font_size(False)
        table.set_fontsize(FONT_PT)
        self.y_in += height_in + 0.12

    def technique(self, heading: str, export: CaseExport) -> None:
        """Radial: the lesion's aliquots as sectors, those given shaded; sequential: its
        sectors, the ones injected in this cycle shaded."""
        lesions = [x for x in (export.case.get("plan") or {}).get("lesions", []) if x["injected"]]
        if not lesions:
            return
        self.figure.text(0.06, self._y(), heading, fontsize=9, weight="bold", va="top")
        self.y_in += 0.2
        size_in = 0.75
        for k, lesion in enumerate(lesions[:MAX_FACES]):
            left = 0.08 + k * (1.0 / MAX_FACES) * 0.9
            axes = self.figure.add_axes(
                (left, self._y() - size_in / A4_IN[1], size_in / A4_IN[0], size_in / A4_IN[1])
            )
            parts, given, caption = _clock_face(lesion, export.injections)
            colours = ["#2e7d32" if k in given else "#dddddd" for k in range(parts)]
            axes.pie(
                [1.0] * parts,
                colors=colours,
                startangle=90,
                counterclock=False,
                wedgeprops={"edgecolor": "white", "linewidth": 1.0},
            )
            axes.set_title(caption, fontsize=FONT_PT, y=-0.32)
        if len(lesions) > MAX_FACES:
            self.figure.text(0.9, self._y() - 0.3 / A4_IN[1], f"... and {len(lesions) - MAX_FACES}")
        self.y_in += size_in + 0.35

    def trace(self, heading: str, traces: dict[str, Trace], export: CaseExport) -> None:
        self.figure.text(0.06, self._y(), heading, fontsize=9, weight="bold", va="top")
        self.y_in += 0.2
        height_in = 1.6
        axes = self.figure.add_axes(
            (0.1, self._y() - height_in / A4_IN[1], 0.84, height_in / A4_IN[1])
        )
        for item in export.injections:
            t, p = traces.get(item["id"], (np.zeros(0), np.zeros(0)))
            if t.size:
                axes.plot(t - t[np.isfinite(t)][0], p, linewidth=0.6, label=_label(item))
        axes.set_xlabel("s from the injection's first sample", fontsize=FONT_PT)
        axes.set_ylabel("pressure mmHg", fontsize=FONT_PT)
        axes.tick_params(labelsize=FONT_PT)
        if axes.lines:
            axes.legend(fontsize=FONT_PT - 1, loc="upper right")
        else:
            axes.text(0.5, 0.5, "no pressure recorded", ha="center", transform=axes.transAxes)
        self.y_in += height_in + 0.45


def _widths(columns: Sequence[str], rows: list[list[str]]) -> list[float]:
    """Each column as wide as its longest text (4 to 60 characters); the note of rows left
    out spans the table and does not count."""
    data = [r for r in rows if not r[0].startswith("... and ")]
    longest = [
        min(60, max([4, len(column)] + [len(r[k]) for r in data if k < len(r)]))
        for k, column in enumerate(columns)
    ]
    total = float(sum(longest))
    return [n / total for n in longest]


def _clock_face(
    lesion: dict[str, Any], injections: list[dict[str, Any]]
) -> tuple[int, set[int], str]:
    """(sectors, those given, caption) for one lesion."""
    label = lesion["label"]
    if lesion.get("technique") == "sequential":
        sectors = int(lesion.get("sectors") or 4)
        given = {
            int(i["sector"]) - 1
            for i in injections
            if i.get("lesion") == label and i.get("sector") and (i.get("delivered_ml") or 0) > 0
        }
        done = ", ".join(str(n + 1) for n in sorted(given)) or "none"
        return sectors, given, f"{label}: sequential, sector {done} of {sectors}"
    aliquots = int(lesion.get("aliquots") or 1)
    each_ml = float(lesion["volume_ml"]) / aliquots
    count = min(aliquots, int(float(lesion.get("delivered_ml") or 0.0) / each_ml + 0.05))
    return aliquots, set(range(count)), f"{label}: radial, {count} of {aliquots} aliquots"


def _label(item: dict[str, Any]) -> str:
    return f"{item.get('lesion') or item.get('target') or '-'} {item.get('drug') or ''}".strip()


def _plan_rows(case: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    columns = [
        "lesion",
        "injected",
        "organ",
        "size mm",
        "technique",
        "planned mL",
        "drugs",
        "delivered mL",
    ]
    lesions = (case.get("plan") or {}).get("lesions", [])
    rows = [
        [
            str(x.get("label")),
            "yes" if x.get("injected") else "no",
            str(x.get("organ") or ""),
            _num(x.get("size_mm")),
            _technique(x),
            _num(x.get("volume_ml")),
            ", ".join(x.get("drugs") or []),
            _num(x.get("delivered_ml")),
        ]
        for x in lesions
    ]
    return columns, rows


def _technique(lesion: dict[str, Any]) -> str:
    technique = str(lesion.get("technique") or "")
    aliquots = lesion.get("aliquots")
    return f"{technique}, {aliquots} aliquots" if aliquots and aliquots > 1 else technique


def _drug_rows(case: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [
        [str(d["drug"]), str(d["lot"]), str(d["prepared_utc"])[:16], _num(d["prepared_volume_ml"])]
        for d in case.get("drugs", [])
    ]
    return ["drug", "lot", "prepared (UTC)", "volume mL"], rows


def _checklist_rows(case: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [
        [
            str(c["phase"]),
            str(c["text"])[:70],
            "yes" if c.get("done") else "no",
            str(c.get("by") or ""),
            str(c.get("at") or "")[:16],
        ]
        for c in case.get("checklist", [])
    ]
    return ["phase", "item", "done", "by", "at (UTC)"], rows


def _injection_rows(export: CaseExport) -> tuple[list[str], list[list[str]]]:
    lots = {d["drug"]: d["lot"] for d in export.case.get("drugs", [])}
    rows = []
    for item in export.injections:
        p = item["pressure_mmhg"]
        alarms = "; ".join(str(a["kind"]) for a in item["alarms"]) or "none"
        where = item.get("sector") or (
            f"{item['aliquots']} aliquots" if (item.get("aliquots") or 1) > 1 else ""
        )
        rows.append(
            [
                str(item.get("lesion") or item.get("target") or "-"),
                str(item.get("drug") or ""),
                str(lots.get(item.get("drug"), "")),
                _num(item.get("volume_ml")),
                _num(item.get("delivered_ml")),
                _num(item.get("rate_ml_min")),
                str(where),
                f"{_num(p['min'])} / {_num(p['median'])} / {_num(p['max'])}",
                str(item["state"]),
                alarms,
                str(export.actor_of(item["id"]) or ""),
            ]
        )
    columns = [
        "lesion",
        "drug",
        "lot",
        "planned mL",
        "delivered mL",
        "rate mL/min",
        "aliquots / sector",
        "pressure min/med/max",
        "state",
        "alarms",
        "started by",
    ]
    return columns, rows


def _imaging_rows(case: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = [
        [
            str(x.get("lesion") or ""),
            str(x.get("role") or ""),
            str(x.get("study_uid") or ""),
            str(x.get("series_uid") or ""),
            str(x.get("description") or ""),
        ]
        for x in case.get("imaging", [])
    ]
    return ["lesion", "image", "study UID", "series UID", "description"], rows


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)
