"""Where gravimetric reports live, and how they look on paper.

Each report is kept with the pump's calibration record, under
``<calibrations>/<pump id>/gravimetric/<stamp>.{json,png,html}``: the JSON is
the record (every weight, so the figures can be recomputed), the PNG the
start-up and trumpet curves as manufacturers print them, the HTML a page to
print and sign. Matplotlib draws the PNG with its object API (no pyplot global
state), so it is safe to call from a worker thread off the event loop.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from controller.calibration.gravimetric_run import GravimetricReport


def report_folder(directory: Path, pump_id: str) -> Path:
    return directory / pump_id / "gravimetric"


def save_report(directory: Path, report: GravimetricReport) -> Path:
    """Write JSON, PNG and HTML; returns the JSON path. Written whole, then renamed."""
    folder = report_folder(directory, report.pump_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report.stamp}.json"
    for suffix, data in (
        (".png", render_png(report)),
        (".html", to_html(report).encode()),
        (".json", (report.model_dump_json(indent=2) + "\n").encode()),
    ):
        tmp = path.with_suffix(suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path.with_suffix(suffix))
    return path


def load_reports(directory: Path) -> list[GravimetricReport]:
    """Every stored report of every pump, oldest first."""
    found = [
        GravimetricReport.model_validate_json(p.read_text())
        for p in directory.glob("*/gravimetric/*.json")
    ]
    return sorted(found, key=lambda r: r.created_utc)


def find_report(directory: Path, stamp: str) -> Path | None:
    """The JSON path of the report with this stamp, if any (stamps are unique per run)."""
    if not stamp.replace("T", "").replace("Z", "").isdigit():
        return None
    matches = sorted(directory.glob(f"*/gravimetric/{stamp}.json"))
    return matches[0] if matches else None


def render_png(report: GravimetricReport) -> bytes:
    fig = Figure(figsize=(10, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    startup, trumpet = fig.subplots(1, 2)
    rate = report.plan.rate_ml_h
    t_min = [s.t_s / 60 for s in report.samples[1:]]
    startup.plot(t_min, report.flow_ml_h, color="#1f5fa8", linewidth=1)
    startup.axhline(rate, color="#444", linestyle="--", linewidth=1, label=f"set {rate:g} mL/h")
    start_min = report.plan.analysis_start_s / 60
    startup.axvspan(start_min, t_min[-1], color="#e8eef7", label="analysis period")
    startup.set(xlabel="time (min)", ylabel="flow Q_i (mL/h)", title="Start-up curve")
    startup.legend(loc="lower right", fontsize="small")
    windows = [row.window_min for row in report.trumpet]
    trumpet.plot(
        windows, [r.max_error_pct for r in report.trumpet], "o-", color="#b03a2e", label="Ep(max)"
    )
    trumpet.plot(
        windows, [r.min_error_pct for r in report.trumpet], "o-", color="#1f5fa8", label="Ep(min)"
    )
    trumpet.axhline(
        report.mean_error_pct,
        color="#444",
        linestyle="--",
        linewidth=1,
        label=f"A = {report.mean_error_pct:+.2f} %",
    )
    tol = report.plan.tolerance_pct
    trumpet.axhspan(-tol, tol, color="#eaf5ea", label=f"±{tol:g} %")
    trumpet.set(
        xlabel="observation window (min)",
        ylabel="flow error (%)",
        title="Trumpet curve",
        xticks=windows,
    )
    trumpet.legend(loc="upper right", fontsize="small")
    fig.suptitle(
        f"Pump {report.pump_id}, {report.plan.syringe or ''} "
        f"{report.plan.diameter_mm:g} mm, {rate:g} mL/h: "
        f"{'PASS' if report.passed else 'FAIL'}"
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def to_html(r: GravimetricReport) -> str:
    e = html.escape
    rows = "\n".join(
        f"<tr><td>{t.window_min:g}</td><td>{t.max_error_pct:+.2f}</td>"
        f"<td>{t.min_error_pct:+.2f}</td><td>{t.windows}</td></tr>"
        for t in r.trumpet
    )
    notes = "".join(f"<li>{e(n)}</li>" for n in r.notes) or "<li>none</li>"
    verdict = "PASSED" if r.passed else "FAILED"
    p = r.plan
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gravimetric test {e(r.pump_id)} {r.stamp}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #999;padding:.3em .6em}}
table{{border-collapse:collapse}}.verdict{{font-size:1.4em;font-weight:bold}}
img{{max-width:100%}}</style></head>
<body>
<h1>Syringe pump gravimetric accuracy test</h1>
<p>In the manner of IEC 60601-2-24 (start-up and trumpet curves). Research use only.</p>
<p class="verdict">{verdict}: mean flow error A = {r.mean_error_pct:+.2f} %
(tolerance ±{p.tolerance_pct:g} %)</p>
<table>
<tr><th>pump</th><td>{e(r.pump_id)}, firmware {e(r.pump_firmware)}</td></tr>
<tr><th>balance</th><td>{e(r.balance_model)}, serial {e(r.balance_serial)}</td></tr>
<tr><th>syringe</th><td>{e(p.syringe)} {p.diameter_mm:g} mm, {p.capacity_ml:g} mL</td></tr>
<tr><th>set rate</th><td>{p.rate_ml_h:g} mL/h</td></tr>
<tr><th>run</th><td>{p.duration_min:g} min, weighed every {p.interval_s:g} s,
analysis from {p.analysis_start_s / 60:g} min; liquid density {p.density_g_ml:g} g/mL</td></tr>
<tr><th>mean flow</th><td>{r.mean_flow_ml_h:.4f} mL/h</td></tr>
<tr><th>delivered</th><td>{r.gravimetric_ml:.4f} mL by weight;
pump reports {r.pump_infused_ml:.4f} mL</td></tr>
<tr><th>time base</th><td>{
        "real time" if r.clock_speed == 1 else f"simulated, {r.clock_speed:g}x real time"
    }</td></tr>
<tr><th>created</th><td>{r.created_utc.isoformat()}</td></tr>
</table>
<h2>Trumpet curve (analysis period)</h2>
<table><tr><th>window (min)</th><th>Ep(max) %</th><th>Ep(min) %</th><th>positions</th></tr>
{rows}</table>
<h2>Curves</h2><img src="{r.stamp}.png" alt="start-up and trumpet curves">
<h2>Notes</h2><ul>{notes}</ul>
<p>Tested by: ______________________ &nbsp; Date: ____________ &nbsp; Signature: ____________</p>
</body></html>
"""
