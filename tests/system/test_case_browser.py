"""A two-lesion case through the page by a signed-in operator (issue 19): one lesion
injected radially in two aliquots, one planned as not injected; the drug prepared, the
checklist ticked by name, the lesion's next step filled in by "Use", the run, and the
page's refusal of the lesion that must not be injected. Then its imaging (issue 20): the
subject's studies listed from a real Orthanc, the baseline and the needle-in-place series
chosen for the lesion, the procedure written back as an SR, and the PDF report opened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from controller.config import ControllerConfig, ImagingConfig
from tests.support.browser import ServedInThread, expect_state, page_on, plan_and_start
from tests.support.cli import run_cli
from tests.support.orthanc import Archive, archive, ct_series
from tests.support.served_app import sim_settings

__all__ = ["archive"]  # the fixture
SUBJECT = "HITIT-012"


@pytest.fixture
async def page_with_archive(
    tmp_path: Path, archive: Archive
) -> AsyncIterator[tuple[Page, ServedInThread, Path]]:
    """The page on ``serve --sim`` whose config names the test's Orthanc, holding the
    subject's baseline CT and the CT with the needle in place."""
    await archive.upload(
        ct_series(SUBJECT, description="baseline")
        + ct_series(SUBJECT, description="needle in place", series_number=2)
    )
    config = ControllerConfig(imaging=ImagingConfig(dicomweb_url=archive.dicomweb_url))
    settings = sim_settings(tmp_path / "db.sqlite", staleness_s=1.0, config=config)
    async with page_on(settings) as (page, served):
        yield page, served, tmp_path


LESIONS = (
    {
        "label": "liver VI",
        "organ": "liver",
        "size_mm": "30",
        "depth_mm": "60",
        "volume_ml": "0.6",
        "aliquots": "2",
        "drugs": "tlr-agonist",
    },
    {"label": "liver II", "organ": "liver", "size_mm": "22", "depth_mm": "40"},
)


async def sign_in(page: Page, db: Path) -> None:
    code, out, err = await run_cli("users", "add", "ada", "--role", "operator", "--db", str(db))
    assert code == 0, err
    await page.fill("#signin-token", out.strip().splitlines()[-1])
    await page.click("#signin button")
    await expect(page.locator("#signed-in")).to_have_text("ada (operator)", timeout=5_000)


async def plan_case(page: Page) -> None:
    await page.click("[data-tab=case]")
    await page.fill("#case-open input[name=subject]", SUBJECT)
    await page.click("#case-open button")
    await expect(page.locator("#case-title")).to_contain_text(f"{SUBJECT}, cycle 1", timeout=5_000)
    await page.click("#add-lesion")  # the second, not injected
    rows = page.locator("#lesion-editor tbody tr")
    await expect(rows).to_have_count(2)
    for k, lesion in enumerate(LESIONS):
        for name, value in lesion.items():
            await rows.nth(k).locator(f"[name={name}]").fill(value)
    await page.click("#save-case-plan")
    await expect(page.locator("#message")).to_have_text("case plan saved", timeout=5_000)
    lesions = page.locator("#case-lesions tbody tr")
    await expect(lesions).to_have_count(2)
    await expect(lesions.nth(1)).to_contain_text("not injected")
    await expect(lesions.nth(0)).to_contain_text("2 aliquot(s): 0.30 + 0.30 mL")
    await page.fill("#prep-lot", "L7-2026")
    await page.click("#prep-save")
    await expect(page.locator("#case-drugs")).to_contain_text("tlr-agonist lot L7-2026")
    boxes = page.locator("#case-checklist input[type=checkbox]")
    await expect(boxes).to_have_count(13)  # no virotherapy: no barrier precautions
    for k in range(await boxes.count()):
        label = await boxes.nth(k).locator("xpath=..").text_content() or ""
        if label.startswith(" pre:") or label.startswith(" per:"):
            await boxes.nth(k).check()
            await expect(boxes.nth(k).locator("xpath=..")).to_contain_text("ada,", timeout=5_000)


async def test_a_two_lesion_case_run_radially_by_a_signed_in_operator(
    page_with_archive: tuple[Page, ServedInThread, Path],
) -> None:
    page, served, folder = page_with_archive
    runtime = served.runtime
    await sign_in(page, folder / "db.sqlite")
    await plan_case(page)
    await page.screenshot(path=folder / "case.png", full_page=True)
    await page.locator("#case-lesions tbody tr").first.get_by_role("button", name="Use").click()
    form = page.locator("#plan")
    await expect(form.locator("[name=lesion]")).to_have_value("liver VI")
    await expect(form.locator("[name=drug]")).to_have_value("tlr-agonist")
    await expect(form.locator("[name=aliquots]")).to_have_value("2")
    await expect(page.locator("#case-lesion")).to_contain_text(
        f"{SUBJECT} cycle 1: lesion liver VI"
    )
    await plan_and_start(page, served, runtime, "0.6", "5.0")
    await expect(page.locator("#waiting")).to_be_visible(timeout=15_000)  # the needle moves
    await page.click("#resume")
    await expect_state(page, runtime, "completed", 20_000)

    # the lesion kept to watch the abscopal effect cannot be injected, and the page says why
    await page.evaluate("document.querySelector('#plan [name=lesion]').value = 'liver II'")
    await page.fill("#plan input[name=volume_ml]", "0.5")
    await page.click("#create")
    await expect(page.locator("#message")).to_contain_text(
        "409: lesion 'liver II' is planned as not injected", timeout=5_000
    )
    await page.click("[data-tab=case]")
    done = page.locator("#case-lesions tbody tr").first
    await expect(done).to_contain_text("0.600 / 0.6 mL", timeout=5_000)
    await expect(done).to_contain_text("✓ tlr-agonist")
    await page.screenshot(path=folder / "case-done.png", full_page=True)
    controller = runtime.controller
    assert controller is not None
    case_id = await page.evaluate("sessionStorage.getItem('injectctl-case')")
    view = await served.run(runtime.cases.view(case_id)) if runtime.cases else None
    assert view is not None
    started = [e for e in view["events"] if e["kind"] == "started"]
    assert started and started[0]["actor"] == "ada"

    await choose_images_and_report(page, served, case_id)


async def choose_images_and_report(page: Page, served: ServedInThread, case_id: str) -> None:
    """The subject's series from the archive; each chosen for liver VI; the SR stored; the
    PDF report opened in a new tab."""
    await page.click("#find-studies")
    series = page.locator("#case-studies tbody tr")
    await expect(series).to_have_count(2, timeout=10_000)
    await page.select_option("#image-lesion", "liver VI")
    baseline = series.filter(has_not_text="needle in place")
    await baseline.get_by_role("button", name="baseline").click()
    needle = series.filter(has_text="needle in place")
    await needle.get_by_role("button", name="needle-in-place").click()
    chosen = page.locator("#case-imaging li")
    await expect(chosen).to_have_count(2, timeout=5_000)
    await expect(chosen.nth(1)).to_contain_text("liver VI: needle-in-place")
    await page.click("#write-sr")
    await expect(page.locator("#message")).to_contain_text(
        "report stored in the archive", timeout=15_000
    )
    runtime = served.runtime
    view = await served.run(runtime.cases.view(case_id)) if runtime.cases else None
    assert view is not None and len(view["imaging_reports"]) == 1
    assert view["imaging_reports"][0]["by"] == "ada"
    async with page.context.expect_page() as opened:
        await page.click("#case-pdf")
    pdf_tab = await opened.value
    await pdf_tab.wait_for_load_state()
    assert pdf_tab.url.startswith("blob:")
