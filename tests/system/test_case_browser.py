"""A two-lesion case through the page by a signed-in operator (issue 19): one lesion
injected radially in two aliquots, one planned as not injected; the drug prepared, the
checklist ticked by name, the lesion's next step filled in by "Use", the run, and the
page's refusal of the lesion that must not be injected."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from tests.support.browser import ServedInThread, expect_state, page_on_sim, plan_and_start
from tests.support.cli import run_cli

__all__ = ["page_on_sim"]  # the fixture

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
    await page.fill("#case-open input[name=subject]", "HITIT-012")
    await page.click("#case-open button")
    await expect(page.locator("#case-title")).to_contain_text("HITIT-012, cycle 1", timeout=5_000)
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
    page_on_sim: tuple[Page, ServedInThread, Path],
) -> None:
    page, served, folder = page_on_sim
    runtime = served.runtime
    await sign_in(page, folder / "db.sqlite")
    await plan_case(page)
    await page.screenshot(path=folder / "case.png", full_page=True)
    await page.locator("#case-lesions tbody tr").first.get_by_role("button", name="Use").click()
    form = page.locator("#plan")
    await expect(form.locator("[name=lesion]")).to_have_value("liver VI")
    await expect(form.locator("[name=drug]")).to_have_value("tlr-agonist")
    await expect(form.locator("[name=aliquots]")).to_have_value("2")
    await expect(page.locator("#case-lesion")).to_contain_text("HITIT-012 cycle 1: lesion liver VI")
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
