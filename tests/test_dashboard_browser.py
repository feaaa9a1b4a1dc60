"""The operator page in Debian's Chromium, driven by Playwright, against serve on the simulator."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Page, async_playwright, expect

from controller.injection import State
from dashboard.app import create_app
from dashboard.runtime import Runtime, ServeSettings
from dashboard.server import Server
from tests.served_app import until

TOKEN = "browser-test-token"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
async def page_on_sim(tmp_path: Path) -> AsyncIterator[tuple[Page, Runtime, Path]]:
    assert shutil.which(CHROMIUM), "Debian's chromium is needed (make test installs it)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.add_init_script(f"sessionStorage.setItem('injectctl-token', '{TOKEN}')")
        # Playwright's client shares this process and its event loop with the server, and
        # holds the loop for up to 170 ms at a time (measured while Chromium loads the page);
        # the pty's 4 KB buffer then fills and the simulator's stream arrives in bunches. The
        # 20 ms limit is held in the API tests (same server, simulator in its own process,
        # no browser in the process) and against the drivers in test_transducer_driver.py.
        settings = ServeSettings(sim=True, db=tmp_path / "db.sqlite", token=TOKEN, staleness_s=0.2)
        runtime = Runtime(settings)
        config = uvicorn.Config(
            create_app(settings, runtime), host="127.0.0.1", port=0, log_level="critical"
        )
        server = Server(config)
        task = asyncio.create_task(server.serve())
        try:
            async with asyncio.timeout(20):
                await server.ready.wait()
            await page.goto(f"http://127.0.0.1:{server.port}/")
            yield page, runtime, tmp_path
        finally:
            server.should_exit = True
            await task
            await browser.close()


async def _plan_and_start(page: Page, runtime: Runtime, volume: str, rate: str) -> None:
    await page.click("#zero")
    await expect(page.locator("#message")).to_have_text("zeroed", timeout=10_000)
    await page.fill("#plan input[name=volume_ml]", volume)
    await page.fill("#plan input[name=rate_ml_min]", rate)
    for box in await page.locator(".check").all():
        await box.check()
    await page.click("#create")
    await expect(page.locator("#message")).to_contain_text("planned", timeout=5_000)
    assert runtime.controller is not None and runtime.controller.alarm is None, (
        runtime.controller and runtime.controller.alarm
    )
    await page.click("#start")
    await expect(page.locator("#message")).to_have_text("", timeout=5_000)
    await expect(page.locator("#state-badge")).to_have_text("running", timeout=5_000)


async def test_run_an_injection_see_it_move_and_stop_on_an_occlusion(
    page_on_sim: tuple[Page, Runtime, Path],
) -> None:
    page, runtime, folder = page_on_sim
    sim, controller = runtime.sim, runtime.controller
    assert sim is not None and controller is not None
    await _plan_and_start(page, runtime, "2.0", "3.0")
    await page.wait_for_function("window.chartPoints() > 200", timeout=10_000)
    await page.wait_for_function("document.getElementById('progress').value > 0.05", timeout=10_000)
    await page.screenshot(path=folder / "running.png")
    await until(runtime, lambda: controller.supervisor.line.state == "monitoring", 20)
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
    await until(runtime, lambda: any(e["kind"] == "alarm" for e in injection.events), 10)
    assert not (await sim.state())["pump_moving"]  # stopped; the bounded relief has run
    await page.click("#acknowledge")
    await expect(banner).to_be_hidden(timeout=5_000)
    await page.reload()  # nothing is lost: the state comes from the server
    await expect(page.locator("#state-badge")).to_have_text("alarm", timeout=5_000)
    await expect(page.locator("#volume")).not_to_have_text("0.000 / 0.000 mL")


async def test_stop_button_and_escape_stop_a_running_injection(
    page_on_sim: tuple[Page, Runtime, Path],
) -> None:
    page, runtime, folder = page_on_sim
    sim, controller = runtime.sim, runtime.controller
    assert sim is not None and controller is not None
    assert controller.alarm is None, controller.alarm
    await _plan_and_start(page, runtime, "1.0", "2.0")
    await until(
        runtime, lambda: controller.active is not None and controller.active.delivered_ml > 0.02
    )
    stop = page.locator("#stop")
    await expect(stop).to_be_visible()
    await stop.focus()  # keyboard-reachable
    await page.keyboard.press("Enter")
    await expect(page.locator("#state-badge")).to_have_text("stopped", timeout=5_000)
    assert controller.active is not None and controller.active.state is State.STOPPED
    assert not (await sim.state())["pump_moving"]
    await page.screenshot(path=folder / "stopped.png")


async def test_plan_a_procedure_run_a_target_and_review_it_in_the_records(
    page_on_sim: tuple[Page, Runtime, Path],
) -> None:
    page, runtime, folder = page_on_sim
    sim, controller = runtime.sim, runtime.controller
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
    await _plan_and_start(page, runtime, "0.6", "5.0")
    await expect(page.locator("#waiting")).to_be_visible(timeout=15_000)  # between aliquots
    await page.screenshot(path=folder / "aliquot-pause.png")
    await page.click("#resume")
    await expect(page.locator("#state-badge")).to_have_text("completed", timeout=20_000)
    await page.click("[data-tab=procedure]")
    await expect(progress.first).to_contain_text("/ 0.6 mL")
    await expect(progress.first).not_to_contain_text("0.000 /")
    await page.click("[data-tab=records]")
    entry = page.locator("#injection-list tbody tr").first
    await expect(entry).to_contain_text("completed")
    await controller.recorder.flush_trace()
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
    page_on_sim: tuple[Page, Runtime, Path], width: int, height: int
) -> None:
    """A 1280x800 panel and tablets in portrait and landscape: no sideways scrolling, STOP
    on screen on every tab."""
    page, _, folder = page_on_sim
    await page.set_viewport_size({"width": width, "height": height})
    await expect(page.locator("#sim-tab")).to_be_visible()
    for tab in ("inject", "procedure", "records", "calibration", "sim"):
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
    page_on_sim: tuple[Page, Runtime, Path],
) -> None:
    page, _, folder = page_on_sim
    await page.click("[data-tab=calibration]")
    await expect(page.locator("#grav-form")).to_be_visible()
    await page.fill("#grav-duration", "10")
    await page.fill("#grav-speed", "600")
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
