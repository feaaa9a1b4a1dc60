"""The operator page in Debian's Chromium, driven by Playwright, against serve on the simulator."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.async_api import Page, async_playwright, expect

from controller.injection import State
from dashboard.runtime import Runtime, ServeSettings
from tests.support.served_app import TOKEN, serving, sim_settings, simulator, until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
T = TypeVar("T")


class ServedInThread:
    """serve on the simulator in its own thread and event loop.

    Playwright's client holds its event loop for up to 170 ms at a time (measured while
    Chromium loads a page). Sharing that loop, the server read the transducer in bunches.
    In its own thread the server's loop keeps running, though it still shares the GIL with
    that client and two cores with Chromium and the simulator's process: on a loaded host
    the stream stalled past 20 ms, and once past 200 ms, latching a link_lost alarm in the
    middle of a test about the page. The staleness limit here is therefore 1 s; the 20 ms
    limit is held in the API tests (no browser) and against the drivers in
    test_transducer_driver.py. The test reads the runtime's state across threads and runs
    coroutines on the server's loop with ``run``.
    """

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self._runtime: Runtime | None = None
        self.base = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="served", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to the test by start() and stop()
            self._failure = error
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serving(self.settings) as served:
            self._runtime = served.runtime
            self.base = served.base
            self._ready.set()
            await self._stop.wait()

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "not started"
        return self._runtime

    async def start(self) -> None:
        self._thread.start()
        assert await asyncio.to_thread(self._ready.wait, 30), "server did not start"
        if self._failure is not None:
            raise self._failure

    async def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join, 30)
        assert not self._thread.is_alive(), "server did not stop"
        if self._failure is not None:
            raise self._failure

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (the runtime's objects live there)."""
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def until(self, done: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Wait until ``done()`` holds, re-checked on every transducer sample, on the server's
        loop (no polling)."""
        await self.run(until(self.runtime, done, timeout_s))


@pytest.fixture
async def page_on_sim(tmp_path: Path) -> AsyncIterator[tuple[Page, ServedInThread, Path]]:
    assert shutil.which(CHROMIUM), "Debian's chromium is needed (make test installs it)"
    served = ServedInThread(sim_settings(tmp_path / "db.sqlite", staleness_s=1.0))
    await served.start()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 800})
                await page.add_init_script(f"sessionStorage.setItem('injectctl-token', '{TOKEN}')")
                await page.goto(f"{served.base}/")
                yield page, served, tmp_path
            finally:
                await browser.close()
    finally:
        await served.stop()


async def _expect_state(page: Page, runtime: Runtime, state: str, timeout_ms: float) -> None:
    """The page shows this state; if not, the failure names any alarm the controller latched."""
    try:
        await expect(page.locator("#state-badge")).to_have_text(state, timeout=timeout_ms)
    except AssertionError as error:
        controller = runtime.controller
        alarm = controller.alarm if controller is not None else None
        raise AssertionError(f"{error}\nlatched alarm: {alarm!r}") from error


async def _plan_and_start(
    page: Page, served: ServedInThread, runtime: Runtime, volume: str, rate: str
) -> None:
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
    controller = runtime.controller
    await served.until(lambda: controller.supervisor.rest_status().settled, 60)
    await expect(page.locator("#line-settling")).to_be_hidden(timeout=5_000)
    # the operator presses START, and again while the page says the line is still settling
    # (the rest detector's breath-averaged rate can flick back over its limit a moment after
    # "settled": a known defect of issue 17's rest estimator; the refusal itself is right)
    message = page.locator("#message")
    for _attempt in range(10):
        await page.evaluate("document.getElementById('message').textContent = 'pressed'")
        await page.click("#start")
        await expect(message).not_to_have_text("pressed", timeout=5_000)  # the start's answer
        if "still settling" not in (await message.text_content() or ""):
            break
        await served.until(lambda: controller.supervisor.rest_status().settled, 60)
    await expect(page.locator("#message")).to_have_text("", timeout=5_000)
    await expect(page.locator("#state-badge")).to_have_text("running", timeout=5_000)


async def test_run_an_injection_see_it_move_and_stop_on_an_occlusion(
    page_on_sim: tuple[Page, ServedInThread, Path],
) -> None:
    page, served, folder = page_on_sim
    runtime = served.runtime
    sim, controller = simulator(runtime), runtime.controller
    assert sim is not None and controller is not None
    await _plan_and_start(page, served, runtime, "2.0", "3.0")
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
    await _plan_and_start(page, served, runtime, "1.0", "2.0")
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
    await _plan_and_start(page, served, runtime, "0.6", "5.0")
    await expect(page.locator("#waiting")).to_be_visible(timeout=15_000)  # between aliquots
    await page.screenshot(path=folder / "aliquot-pause.png")
    await page.click("#resume")
    await _expect_state(page, runtime, "completed", 20_000)
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
    page_on_sim: tuple[Page, ServedInThread, Path],
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
