"""The operator page in Debian's Chromium, driven by Playwright, against serve on the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from controller.injection import State
from tests.support.browser import ServedInThread, expect_state, page_on_sim, plan_and_start
from tests.support.served_app import RIG_TOKEN, simulator

__all__ = ["page_on_sim"]  # the fixture


async def test_run_an_injection_see_it_move_and_stop_on_an_occlusion(
    page_on_sim: tuple[Page, ServedInThread, Path],
) -> None:
    page, served, folder = page_on_sim
    runtime = served.runtime
    sim, controller = simulator(runtime), runtime.controller
    assert sim is not None and controller is not None
    await plan_and_start(page, served, runtime, "2.0", "3.0")
    await page.wait_for_function("window.chartPoints() > 200", timeout=10_000)
    await page.wait_for_function("document.getElementById('progress').value > 0.05", timeout=10_000)
    await page.screenshot(path=folder / "running.png")
    await served.until(lambda: controller.supervisor.line.state == "monitoring", 20)
    await page.click("[data-tab=sim]")  # provoked from the page's simulator panel
    await page.select_option("#sim-fault", "occlusion")
    await page.click("#sim-provoke")
    banner = page.locator("#alarm")
    await expect(banner).to_be_visible(timeout=5_000)
    await expect(banner).to_contain_text("OCCLUSION")
    await expect(banner).to_have_attribute("data-priority", "high")
    await expect(page.locator("#state-badge")).to_have_text("alarm")
    await page.screenshot(path=folder / "alarm.png")
    injection = controller.active
    assert injection is not None
    await served.until(lambda: any(e["kind"] == "alarm" for e in injection.events), 10)
    assert not (await served.run(sim.truth()))["pump_moving"]  # stopped; the bounded relief has run
    await page.click("#acknowledge")
    await expect(banner).to_be_hidden(timeout=5_000)
    await page.reload()  # nothing is lost: the state comes from the server
    await expect(page.locator("#state-badge")).to_have_text("alarm", timeout=5_000)
    await expect(page.locator("#volume")).not_to_have_text("0.000 / 0.000 mL")


async def test_stop_button_and_escape_stop_a_running_injection(
    page_on_sim: tuple[Page, ServedInThread, Path],
) -> None:
    page, served, folder = page_on_sim
    runtime = served.runtime
    sim, controller = simulator(runtime), runtime.controller
    assert sim is not None and controller is not None
    assert controller.alarm is None, controller.alarm
    await plan_and_start(page, served, runtime, "1.0", "2.0")
    await served.until(
        lambda: controller.active is not None and controller.active.delivered_ml > 0.02
    )
    stop = page.locator("#stop")
    await expect(stop).to_be_visible()
    await stop.focus()  # keyboard-reachable
    await page.keyboard.press("Enter")
    await expect(page.locator("#state-badge")).to_have_text("stopped", timeout=5_000)
    assert controller.active is not None and controller.active.state is State.STOPPED
    assert not (await served.run(sim.truth()))["pump_moving"]
    await page.screenshot(path=folder / "stopped.png")


async def test_plan_a_procedure_run_a_target_and_review_it_in_the_records(
    page_on_sim: tuple[Page, ServedInThread, Path],
) -> None:
    page, served, folder = page_on_sim
    runtime = served.runtime
    sim, controller = simulator(runtime), runtime.controller
    assert sim is not None and controller is not None
    await page.click("[data-tab=procedure]")
    row = page.locator("#target-editor tbody tr").first
    for name, value in (
        ("label", "liver VI"),
        ("organ", "liver"),
        ("size_mm", "30"),
        ("depth_mm", "80"),
        ("volume_ml", "0.6"),
        ("aliquots", "2"),
    ):
        await row.locator(f"[name={name}]").fill(value)
    await page.fill("#case-ref", "HCC-007")
    await page.click("#save-plan")
    progress = page.locator("#procedure-progress tbody tr")
    await expect(progress).to_have_count(1)
    await expect(progress.first).to_contain_text("0.000 / 0.6 mL")
    await page.screenshot(path=folder / "plan.png")
    await progress.first.get_by_role("button", name="Use").click()
    await expect(page.locator("#plan input[name=target]")).to_have_value("liver VI")
    await expect(page.locator("#plan input[name=aliquots]")).to_have_value("2")
    await plan_and_start(page, served, runtime, "0.6", "5.0")
    await expect(page.locator("#waiting")).to_be_visible(timeout=15_000)  # between aliquots
    await page.screenshot(path=folder / "aliquot-pause.png")
    await page.click("#resume")
    await expect_state(page, runtime, "completed", 20_000)
    await page.click("[data-tab=procedure]")
    await expect(progress.first).to_contain_text("/ 0.6 mL")
    await expect(progress.first).not_to_contain_text("0.000 /")
    await page.click("[data-tab=records]")
    entry = page.locator("#injection-list tbody tr").first
    await expect(entry).to_contain_text("completed")
    await served.run(controller.recorder.flush_trace())
    await entry.click()
    await page.wait_for_function(
        "Number(document.getElementById('trace-chart').dataset.points) > 100", timeout=10_000
    )
    await expect(page.locator("#trace-events")).to_contain_text("completed")
    await page.screenshot(path=folder / "records.png")
    await page.click("[data-tab=calibration]")
    await expect(page.locator("#cal-in-force")).to_contain_text("gain")
    await page.screenshot(path=folder / "calibration.png")


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (800, 1280), (1024, 768)])
async def test_every_tab_fits_the_screen_with_stop_in_reach(
    page_on_sim: tuple[Page, ServedInThread, Path], width: int, height: int
) -> None:
    """A 1280x800 panel and tablets in portrait and landscape: no sideways scrolling, STOP
    on screen on every tab."""
    page, _, folder = page_on_sim
    await page.set_viewport_size({"width": width, "height": height})
    await expect(page.locator("#sim-tab")).to_be_visible()
    for tab in ("inject", "case", "procedure", "records", "calibration", "sim"):
        await page.click(f"[data-tab={tab}]")
        await expect(page.locator(f"#panel-{tab}")).to_be_visible()
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (tab, overflow)
        await expect(page.locator("#stop")).to_be_in_viewport()
        box = await page.locator("#stop").bounding_box()
        assert box is not None and box["width"] >= 120 and box["height"] >= 60  # gloved hands
    await page.screenshot(path=folder / f"tabs-{width}x{height}.png")


async def test_run_the_gravimetric_test_on_the_simulated_bench_and_see_its_trumpet(
    page_on_sim: tuple[Page, ServedInThread, Path],
) -> None:
    page, _, folder = page_on_sim
    await page.fill("#signin-token", RIG_TOKEN)  # the bench is an engineer's (or a rig's)
    await page.click("#signin button")
    await expect(page.locator("#signed-in")).to_have_text("rig (automation)", timeout=5_000)
    await page.click("[data-tab=calibration]")
    await expect(page.locator("#grav-form")).to_be_visible()
    await page.fill("#grav-duration", "10")
    # 200x: PASS needs A within 2 % over the last 5 min, each end's weight timed to 30 ms
    # of real time beside a browser (10 ms at 600x)
    await page.fill("#grav-speed", "200")
    await page.click("#grav-run")
    await expect(page.locator("#grav-progress")).to_have_text("done: PASS", timeout=30_000)
    rows = page.locator("#grav-reports tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("bd-luerlok-5ml")
    stamp = await rows.first.get_attribute("data-stamp")
    await expect(page.locator("#grav-chart")).to_have_attribute("data-report", stamp or "?")
    assert await page.locator("#grav-chart canvas").count() == 1
    report = page.locator("#grav-links a", has_text="printable report")
    assert (
        await report.get_attribute("href") == f"/api/v1/calibration/pump/gravimetric/{stamp}.html"
    )
    await page.screenshot(path=folder / "gravimetric.png")
