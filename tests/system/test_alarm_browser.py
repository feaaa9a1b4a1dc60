"""Issue 21 in Chromium: the high-priority burst scheduled through the Web Audio API (the
AudioContext hooked), silence re-arming by itself after 120 s (Playwright's clock), an
unseen medium alarm escalating, STOP working after the credential was refused (and the
record naming where the stop came from), a missing asset said on the page, and the
operator's screen at a tablet's size with the end-of-aliquot pre-alarm."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from controller.injection import State
from controller.records import queries
from controller.safety.verdict import Verdict, VerdictKind
from drivers.clock import now_s
from tests.support.browser import ServedInThread, page_on, plan_and_start
from tests.support.served_app import sim_settings

# every oscillator start, with the context's time when it was scheduled and its pitch
HOOK_AUDIO = """
window.__pulses = [];
const createOscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  const oscillator = createOscillator.call(this);
  const context = this, start = oscillator.start.bind(oscillator);
  oscillator.start = (when = 0) => {
    const hz = oscillator.frequency.value;
    window.__pulses.push({ when, hz, scheduled_at: context.currentTime });
    start(when);
  };
  return oscillator;
};
"""
HIGH_HZ = 523  # the high-priority pitch in alarms.js
MEDIUM_HZ = 440
# IEC 60601-1-8's high-priority burst as alarms.js schedules it: 3 + 2, pause, 3 + 2
HIGH_BURST_S = [0, 0.25, 0.5, 1.0, 1.25, 2.1, 2.35, 2.6, 3.1, 3.35]
COUNT_HIGH = f"window.__pulses.filter((p) => p.hz === {HIGH_HZ}).length"


@contextlib.asynccontextmanager
async def alarm_page(
    folder: Path, clock: bool = False, viewport: tuple[int, int] = (1280, 800)
) -> AsyncIterator[tuple[Page, ServedInThread]]:
    async def prepare(page: Page) -> None:
        if clock:
            await page.clock.install()
        await page.add_init_script(HOOK_AUDIO)

    settings = sim_settings(folder / "db.sqlite", staleness_s=1.0)
    async with page_on(settings, prepare=prepare, viewport=viewport) as opened:
        yield opened


async def provoke_occlusion(page: Page, served: ServedInThread) -> None:
    controller = served.runtime.controller
    assert controller is not None
    await plan_and_start(page, served, served.runtime, "2.0", "3.0")
    await served.until(lambda: controller.supervisor.line.state == "monitoring", 20)
    await page.click("[data-tab=sim]")
    await page.select_option("#sim-fault", "occlusion")
    await page.click("#sim-provoke")
    await expect(page.locator("#alarm")).to_have_attribute("data-priority", "high", timeout=5_000)


async def high_pulses(page: Page) -> list[dict[str, Any]]:
    pulses: list[dict[str, Any]] = await page.evaluate(
        f"window.__pulses.filter((p) => p.hz === {HIGH_HZ})"
    )
    return pulses


async def test_a_high_alarm_sounds_the_standard_burst_and_silence_re_arms_after_two_minutes(
    tmp_path: Path,
) -> None:
    async with alarm_page(tmp_path, clock=True) as (page, served):
        await provoke_occlusion(page, served)
        await page.wait_for_function(f"{COUNT_HIGH} >= 10", timeout=5_000)
        burst = (await high_pulses(page))[:10]
        onsets = [p["when"] - burst[0]["when"] for p in burst]
        assert onsets == pytest.approx(HIGH_BURST_S, abs=1e-3), onsets
        await page.screenshot(path=tmp_path / "alarm.png")

        await page.click("#silence")
        await expect(page.locator("#alarm-silenced")).to_contain_text("sound paused")
        silenced = len(await high_pulses(page))
        await page.clock.fast_forward(110_000)  # a burst would have come every 7.5 s
        await expect(page.locator("#alarm-silenced")).to_contain_text("sound paused 0:")
        await expect(page.locator("#alarm")).to_be_visible()  # the visual signal stays
        assert len(await high_pulses(page)) == silenced
        await page.clock.fast_forward(11_000)  # past 120 s: it sounds again by itself
        await page.wait_for_function(f"{COUNT_HIGH} >= {silenced + 10}", timeout=5_000)
        await expect(page.locator("#alarm-silenced")).to_be_hidden()
        rows = await served.run(served.runtime.recorder.read(queries.recent_events, 100))
        assert [r["actor"] for r in rows if r["kind"] == "alarm_silenced"] == ["operator"]


async def test_stop_works_after_the_credential_is_refused_then_asks_for_it(
    tmp_path: Path,
) -> None:
    async with alarm_page(tmp_path) as (page, served):
        controller = served.runtime.controller
        assert controller is not None
        await plan_and_start(page, served, served.runtime, "2.0", "2.0")
        await page.check("#pressure-tone")  # for operators who listen rather than look
        await page.wait_for_function("window.alarmSignals.toneHz() > 220", timeout=5_000)
        await page.evaluate("sessionStorage.setItem('injectctl-token', 'expired')")
        await page.click("#pause")  # the server answers 401: the page forgets the token
        await expect(page.locator("#message")).to_contain_text("sign in again")
        assert await page.evaluate("sessionStorage.getItem('injectctl-token')") is None
        assert controller.active is not None and controller.active.state is State.RUNNING
        await page.keyboard.press("Escape")  # STOP with no credential at all
        await expect(page.locator("#state-badge")).to_have_text("stopped", timeout=5_000)
        assert controller.active.state.value == "stopped"
        await expect(page.locator("#message")).to_contain_text("sign in again")
        await expect(page.locator("#signin-token")).to_be_focused()
        rows = await served.run(served.runtime.recorder.read(queries.recent_events, 100))
        (stopped,) = [r for r in rows if r["kind"] == "stopped_by_operator"]
        assert stopped["actor"] == "unidentified at 127.0.0.1"  # the stop names its address


async def test_a_chart_library_that_did_not_load_is_said_on_the_page(tmp_path: Path) -> None:
    async def prepare(page: Page) -> None:
        await page.route("**/uPlot.iife.min.js", lambda route: route.fulfill(status=404))

    settings = sim_settings(tmp_path / "db.sqlite", staleness_s=1.0)
    async with page_on(settings, prepare=prepare) as (page, _):
        notices = page.locator("#notices")
        await expect(notices).to_contain_text("Could not load")
        await expect(notices).to_contain_text("uPlot")
        await expect(page.locator("#stop")).to_be_enabled()  # the page still stops


async def test_a_page_whose_browser_holds_the_sound_back_says_so_before_any_alarm(
    tmp_path: Path,
) -> None:
    settings = sim_settings(tmp_path / "db.sqlite", staleness_s=1.0)
    async with page_on(settings, sound_allowed=False) as (page, _):
        await expect(page.locator("#notices [data-notice=sound]")).to_contain_text(
            "Alarm sound is off until you click"
        )


async def test_the_operator_screen_at_a_tablet_size(tmp_path: Path) -> None:
    """1024x768 (a tablet in landscape beside the table): the pressure big enough for 3 m,
    the bar with its limit tick, the lesion's clock face, touch-sized controls."""
    async with alarm_page(tmp_path, viewport=(1024, 768)) as (page, served):
        await page.fill("#plan input[name=aliquots]", "4")
        await plan_and_start(page, served, served.runtime, "2.0", "2.0")
        await page.wait_for_function(
            "parseFloat(document.getElementById('pressure-fill').style.width) > 0", timeout=5_000
        )
        size = await page.eval_on_selector(
            "#pressure", "e => parseFloat(getComputedStyle(e).fontSize)"
        )
        assert size >= 90, size  # cap height about 17 mm: 20 arc-minutes at 3 m
        await expect(page.locator("#limit-tick")).to_be_visible()
        await expect(page.locator("#clock-face path")).to_have_count(4)
        await expect(page.locator("#clock-face [data-part=now]")).to_have_count(1)
        await expect(page.locator("#clock-label")).to_have_text("aliquot 1 of 4")
        # the pre-alarm before the aliquot ends (0.5 mL at 2 mL/min: announced 10 s before)
        coming = page.locator("#pre-alarms [data-kind=fill_ending]")
        await expect(coming).to_contain_text("aliquot 1 of 4 ends in", timeout=15_000)
        await expect(coming).to_have_attribute("data-priority", "low")
        for button in await page.locator(".live button, #stop").all():
            box = await button.bounding_box()
            assert box is not None and box["height"] >= 44, (await button.text_content(), box)
        await page.screenshot(path=tmp_path / "live-view.png")


async def test_a_medium_alarm_nobody_has_seen_escalates_to_high_after_a_minute(
    tmp_path: Path,
) -> None:
    async with alarm_page(tmp_path, clock=True) as (page, served):
        controller = served.runtime.controller
        assert controller is not None

        async def record_fails() -> None:  # as the recorder reports a failed commit
            controller.supervisor.trip(
                Verdict(VerdictKind.RECORDING_FAILED, "disk full (test)", now_s())
            )

        await served.run(record_fails())
        banner = page.locator("#alarm")
        await expect(banner).to_have_attribute("data-priority", "medium", timeout=5_000)
        await expect(banner).to_have_attribute("data-escalated", "false")
        await page.wait_for_function(f"window.__pulses.some((p) => p.hz === {MEDIUM_HZ})")
        assert await page.evaluate(COUNT_HIGH) == 0
        await page.clock.fast_forward(61_000)  # neither silenced nor acknowledged
        await expect(banner).to_have_attribute("data-escalated", "true")
        await page.wait_for_function(f"{COUNT_HIGH} >= 10", timeout=5_000)
