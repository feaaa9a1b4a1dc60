"""The gravimetric reports and the simulated-bench run through the served API."""

from __future__ import annotations

from tests.support.served_app import RIG_AUTH, Served, served, until

__all__ = ["served"]  # the fixture

RUN = "/api/v1/calibration/pump/gravimetric/run"
LIST = "/api/v1/calibration/pump/gravimetric"


async def test_run_on_the_simulated_bench_then_read_the_report_its_curves_and_page(
    served: Served,
) -> None:
    http, rt = served.http, served.runtime
    assert (await http.get(LIST)).json() == []
    assert (await http.get(RUN)).json() == {"running": False}
    bad = await http.post(RUN, json={"syringe": "no-such"}, headers=RIG_AUTH)
    assert bad.status_code == 422 and "syringe" in bad.text
    too_much = await http.post(RUN, json={"rate_ml_h": 5.0}, headers=RIG_AUTH)
    assert too_much.status_code == 422 and "more than the 5 mL syringe holds" in too_much.text

    body = {"rate_ml_h": 1.0, "duration_min": 10, "speed": 600}
    started = await http.post(RUN, json=body, headers=RIG_AUTH)
    assert started.status_code == 202 and started.json()["total"] == 20
    again = await http.post(RUN, json=body, headers=RIG_AUTH)
    assert again.status_code == 409 and "already running" in again.text
    assert rt.gravimetric is not None
    await until(rt, lambda: not rt.gravimetric.running, timeout_s=30)  # type: ignore[union-attr]
    outcome = (await http.get(RUN)).json()
    assert outcome["running"] is False and outcome["done"] == 20 and "error" not in outcome

    [summary] = (await http.get(LIST)).json()
    assert summary["stamp"] == outcome["stamp"] and summary["clock_speed"] == 600
    assert [t["window_min"] for t in summary["trumpet"]] == [2, 5]
    full = (await http.get(summary["json"])).json()
    assert len(full["samples"]) == 21 and len(full["flow_ml_h"]) == 20
    png = await http.get(summary["png"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:4] == b"\x89PNG"
    page = await http.get(summary["html"])
    assert page.status_code == 200 and "Trumpet curve" in page.text
    for missing in ("20200101T000000000000Z", "..%2F..%2Fetc", "x.png"):
        assert (await http.get(f"{LIST}/{missing}")).status_code == 404
