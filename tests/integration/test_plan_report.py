"""Plans (radial aliquots, sequential sectors, checklist) and the procedure report."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.hil import settled
from controller.controller import StartRefused
from controller.injection import FINAL, State
from controller.procedure.limits import split_evenly
from controller.procedure.plan import Checklist, Target, next_sector
from controller.records.report import build_report, to_csv, to_html
from simulator.rig import SimRig
from tests.support.controller_rig import controller_on_virtual, on_virtual_rig, request

INJECTCTL = str(Path(sys.executable).parent / "injectctl")


def test_aliquots_sectors_and_checklist() -> None:
    assert split_evenly(1.0, 3) == (0.333333, 0.333333, 0.333334)
    assert next_sector([], 4) == (1, 1)
    assert next_sector([(1, 1), (2, 2)], 4) == (3, 3)
    assert next_sector([(3, 4)], 4) == (4, 1)  # clockwise, wrapping
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    checklist = Checklist(luer_lock_confirmed=True, line_primed=True)
    assert checklist.missing(now) == ["needle position not confirmed on imaging"]
    stale = Checklist(
        luer_lock_confirmed=True,
        line_primed=True,
        needle_position_confirmed=True,
        drug_prepared_utc=now - timedelta(hours=3),
        drug_stability_min=120,
    )
    assert "stability window" in stale.missing(now)[0]
    assert Target(label="a", organ="liver", size_mm=8, depth_mm=40).warnings()


# The procedure runs on the virtual clock, the rig on memory ports (its subject is the plan
# and the record, not the wall clock: 70 s of real procedure before); the CLI's report after.
@pytest.mark.virtual_clock
def test_radial_injection_pauses_for_each_needle_position_and_reports(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"

    async def body(sim_rig: SimRig) -> None:
        async with controller_on_virtual(sim_rig, db) as controller:
            expired = controller.create_injection(
                request(
                    drug_prepared_utc=datetime.now(UTC) - timedelta(hours=5), drug_stability_min=60
                )
            )
            with pytest.raises(StartRefused, match="stability window"):
                await controller.start_injection(expired.id)
            await controller.stop_injection(expired.id)
            injection = controller.create_injection(request(0.6, 5.0, aliquots=2))
            assert injection.checked.fills_ml == (0.3, 0.3)
            await controller.start_injection(injection.id)
            await sim_rig.until(lambda: injection.waiting_for == "needle_position", timeout_s=20)
            assert injection.state is State.PAUSED
            assert injection.delivered_ml == pytest.approx(0.3, abs=0.005)
            await controller.resume_injection(
                injection.id
            )  # the operator confirmed the new position
            await sim_rig.until(lambda: injection.state in FINAL, timeout_s=20)
            assert controller.alarm is None, controller.alarm  # said, when a flaky run failed here
            assert str(injection.state) == "completed", injection.state
            assert injection.delivered_ml == pytest.approx(0.6, abs=0.01)
            await sim_rig.until(lambda: injection.events[-1]["kind"] == "completed")
            await controller.recorder.flush_trace()
            await controller.recorder.sync()
            assert await controller.propose_sector("liver segment VI", 4) == (1, 1)
            sector = controller.create_injection(request(0.5, 5.0, cycle=1, sector=1))
            await settled(controller)  # the line decays from the last fill before it is at rest
            await controller.start_injection(sector.id)
            await sim_rig.until(lambda: sector.state is State.COMPLETED, timeout_s=20)
            await sim_rig.until(lambda: sector.events[-1]["kind"] == "completed")
            await controller.recorder.sync()
            assert await controller.propose_sector("liver segment VI", 4) == (2, 2)
            await controller.recorder.flush_trace()

    on_virtual_rig(body)
    report = build_report(db)
    [stopped, radial, _sector] = report["injections"]
    assert stopped["state"] == "stopped" and radial["state"] == "completed"
    assert radial["aliquots"] == 2 and radial["delivered_ml"] == pytest.approx(0.6, abs=0.01)
    assert radial["pressure_mmhg"]["max"] > radial["pressure_mmhg"]["min"]
    assert "needle_position" in [e["kind"] for e in radial["events"]]
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert rows[1]["state"] == "completed" and "needle_position" in rows[1]["actions"]
    page = to_html(report)
    assert "<table>" in page and "Research use only" in page and "liver segment VI" in page
    printed = subprocess.run(
        [INJECTCTL, "report", "--db", str(db)], capture_output=True, timeout=60, check=False
    )
    assert printed.returncode == 0, printed.stderr
    assert len(json.loads(printed.stdout)["injections"]) == 3
