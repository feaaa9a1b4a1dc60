"""Transducer verification: a multi-point check against a reference manometer, judged
against a stated tolerance, kept as a dated certificate (JSON and printable HTML).

A verification changes nothing: it reads the pressure with the calibration in force and
compares it with the manometer at each point. Tolerance: the larger of an absolute part
(default 1 mmHg) and a part of the reading (default 1 %), as transducer standards state
accuracy.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from controller.calibration.transducer import CalibrationRecord, StillReading


class Tolerance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    absolute_mmhg: float = Field(default=1.0, gt=0, le=50)
    percent_of_reading: float = Field(default=1.0, ge=0, le=20)

    def allowed_mmhg(self, reference_mmhg: float) -> float:
        return max(self.absolute_mmhg, abs(reference_mmhg) * self.percent_of_reading / 100.0)

    def describe(self) -> str:
        return f"±{self.absolute_mmhg:g} mmHg or ±{self.percent_of_reading:g} % of reading"


class CheckPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reference_mmhg: float
    reading_mmhg: float
    noise_mmhg: float
    error_mmhg: float
    allowed_mmhg: float
    passed: bool


class Certificate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: str
    created_utc: datetime
    calibration: str  # the record in force, as it describes itself
    gain_counts_per_mmhg: float
    tolerance: Tolerance
    points: list[CheckPoint]
    passed: bool
    note: str = ""


def check_point(
    reference_mmhg: float, reading: StillReading, record: CalibrationRecord, tol: Tolerance
) -> CheckPoint:
    measured = (reading.raw_mean - record.zero_counts) / record.gain_counts_per_mmhg
    error = measured - reference_mmhg
    allowed = tol.allowed_mmhg(reference_mmhg)
    return CheckPoint(
        reference_mmhg=reference_mmhg,
        reading_mmhg=round(measured, 3),
        noise_mmhg=round(reading.sd_mmhg, 3),
        error_mmhg=round(error, 3),
        allowed_mmhg=round(allowed, 3),
        passed=abs(error) <= allowed,
    )


def certify(
    device_id: int, record: CalibrationRecord, tol: Tolerance, points: list[CheckPoint]
) -> Certificate:
    judged = [
        p.model_copy(
            update={
                "allowed_mmhg": round(tol.allowed_mmhg(p.reference_mmhg), 3),
                "passed": abs(p.error_mmhg) <= tol.allowed_mmhg(p.reference_mmhg),
            }
        )
        for p in points
    ]
    return Certificate(
        device_id=f"{device_id:08x}",
        created_utc=datetime.now(UTC),
        calibration=record.scale().source,
        gain_counts_per_mmhg=record.gain_counts_per_mmhg,
        tolerance=tol,
        points=judged,
        passed=all(p.passed for p in judged),
    )


def save_certificate(directory: Path, certificate: Certificate) -> Path:
    """``<dir>/<device>/verifications/<stamp>.json`` and ``.html``; returns the JSON path."""
    folder = directory / certificate.device_id / "verifications"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = certificate.created_utc.strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{stamp}.json"
    path.write_text(certificate.model_dump_json(indent=2) + "\n")
    path.with_suffix(".html").write_text(to_html(certificate))
    return path


def load_certificates(directory: Path, device_id: int) -> list[Certificate]:
    folder = directory / f"{device_id:08x}" / "verifications"
    if not folder.is_dir():
        return []
    found = [Certificate.model_validate_json(p.read_text()) for p in folder.glob("*.json")]
    return sorted(found, key=lambda c: c.created_utc)


def to_html(c: Certificate) -> str:
    rows = "\n".join(
        f"<tr><td>{p.reference_mmhg:.2f}</td><td>{p.reading_mmhg:.2f}</td>"
        f"<td>{p.error_mmhg:+.2f}</td><td>±{p.allowed_mmhg:.2f}</td><td>{p.noise_mmhg:.2f}</td>"
        f"<td>{'pass' if p.passed else 'FAIL'}</td></tr>"
        for p in c.points
    )
    verdict = "PASSED" if c.passed else "FAILED"
    e = html.escape
    gain = f"{c.gain_counts_per_mmhg:.3f}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Transducer verification {e(c.device_id)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #999;padding:.3em .6em}}
table{{border-collapse:collapse}}.verdict{{font-size:1.4em;font-weight:bold}}</style></head>
<body>
<h1>Pressure transducer verification certificate</h1>
<p>Research use only; not a cleared medical device.</p>
<table>
<tr><th>bridge</th><td>{e(c.device_id)}</td></tr>
<tr><th>date</th><td>{e(c.created_utc.strftime("%Y-%m-%d %H:%M:%S UTC"))}</td></tr>
<tr><th>calibration in force</th><td>{e(c.calibration)}, gain {gain} counts/mmHg</td></tr>
<tr><th>tolerance</th><td>{e(c.tolerance.describe())}</td></tr>
</table>
<h2>Points against the reference manometer</h2>
<table><tr><th>reference mmHg</th><th>reading mmHg</th><th>error mmHg</th><th>allowed</th>
<th>noise mmHg rms</th><th>result</th></tr>
{rows}
</table>
<p class="verdict">{verdict}</p>
<p>Reference manometer: ______________________ &nbsp; Checked by: ______________________</p>
</body></html>
"""
