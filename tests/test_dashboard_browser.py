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

TOKEN = "browser-test-token"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
async def page_on_sim(tmp_path: Path) -> AsyncIterator[tuple[Page, Runtime, Path]]:
    assert shutil.which(CHROMIUM), "Debian's chromium is needed (make test installs it)"
    # The browser starts first: launching it holds this event loop for tens of ms, which the
    # in-process simulator (sharing the loop) would show as a silent transducer.
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.add_init_script(f"sessionStorage.setItem('injectctl-token', '{TOKEN}')")
        # Chromium shares this machine's two cores with the in-process simulator; its
        # scheduling, not any link, can starve the emulated bridge for tens of ms. The 20 ms
        # staleness limit is tested against the drivers in test_transducer_driver.py.
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
    await page.fill("input[name=volume_ml]", volume)
    await page.fill("input[name=rate_ml_min]", rate)
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
    rig, controller = runtime.rig, runtime.controller
    assert rig is not None and controller is not None
    await _plan_and_start(page, runtime, "2.0", "3.0")
    await page.wait_for_function("window.chartPoints() > 200", timeout=10_000)
    await page.wait_for_function("document.getElementById('progress').value > 0.05", timeout=10_000)
    await page.screenshot(path=folder / "running.png")
    await rig.until(lambda: controller.supervisor.line.state == "monitoring", 20)
    rig.inject("occlusion")
    banner = page.locator("#alarm")
    await expect(banner).to_be_visible(timeout=5_000)
    await expect(banner).to_contain_text("OCCLUSION")
    await expect(banner).to_have_attribute("data-priority", "high")
    await expect(page.locator("#state-badge")).to_have_text("alarm")
    await page.screenshot(path=folder / "alarm.png")
    injection = controller.active
    assert injection is not None
    await rig.until(lambda: any(e["kind"] == "alarm" for e in injection.events), 10)
    assert not rig.pump.model.status.moving  # stopped; the bounded relief has run
    await page.click("#acknowledge")
    await expect(banner).to_be_hidden(timeout=5_000)
    await page.reload()  # nothing is lost: the state comes from the server
    await expect(page.locator("#state-badge")).to_have_text("alarm", timeout=5_000)
    await expect(page.locator("#volume")).not_to_have_text("0.000 / 0.000 mL")


async def test_stop_button_and_escape_stop_a_running_injection(
    page_on_sim: tuple[Page, Runtime, Path],
) -> None:
    page, runtime, folder = page_on_sim
    rig, controller = runtime.rig, runtime.controller
    assert rig is not None and controller is not None
    assert controller.alarm is None, controller.alarm
    await _plan_and_start(page, runtime, "1.0", "2.0")
    await rig.until(lambda: rig.plant.delivered_ml > 0.02)
    stop = page.locator("#stop")
    await expect(stop).to_be_visible()
    await stop.focus()  # keyboard-reachable
    await page.keyboard.press("Enter")
    await expect(page.locator("#state-badge")).to_have_text("stopped", timeout=5_000)
    assert controller.active is not None and controller.active.state is State.STOPPED
    assert not rig.pump.model.status.moving
    await page.screenshot(path=folder / "stopped.png")
