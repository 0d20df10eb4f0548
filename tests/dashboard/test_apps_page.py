"""The Apps page, in Chromium: one row per app, changing live as the pipeline works."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from dashboard.render import STATES
from tests.dashboard.conftest import BROKEN, MakePipeline, app_files, screenshot_path
from tests.drift.test_diff_command import gitops

LIVE = 60_000  # ms: a push -> sync -> outcome -> page round trip on a loaded machine


async def test_a_row_turns_from_succeeded_to_failed_after_a_broken_push_without_a_reload(
    pipeline: MakePipeline, page: Page, tmp_path: Path
) -> None:
    p = await pipeline()
    await page.goto(p.url)
    web, api = page.locator("#app-web"), page.locator("#app-api")
    await expect(page.locator("#apps tbody tr")).to_have_count(2)
    await expect(web.locator(".outcome")).to_contain_text("succeeded", timeout=LIVE)
    await expect(api.locator(".outcome")).to_contain_text("succeeded", timeout=LIVE)
    await expect(web).to_contain_text("platform · main · apps/web")
    await expect(web.locator("td").nth(1)).to_have_text("dev")
    await expect(web).to_contain_text("healthy")
    await page.evaluate("window.__sameDocument = true")

    pushed = await p.push({"apps/web/broken.yaml": BROKEN}, "broken manifest")

    await expect(web.locator(".outcome")).to_contain_text("failed", timeout=LIVE)
    await expect(web.locator(".outcome .why")).to_contain_text("Not_A_Valid_Name")
    await expect(web).to_contain_text(pushed.sha[:7])
    await expect(web).to_have_attribute("data-state", "failed")
    # The state is told by a word and an icon, not by colour alone.
    badge = web.locator(".outcome .badge").first
    await expect(badge).to_have_text("failed")
    icon = await badge.evaluate("e => getComputedStyle(e, '::before').content")
    assert icon.startswith('"✖'), icon
    await expect(api.locator(".outcome")).to_contain_text("succeeded")
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    await page.screenshot(path=str(screenshot_path(tmp_path, "dashboard-apps.png")))

    # Filter by state, then by text; the other row is hidden, not removed.
    await page.select_option("#state", "failed")
    await expect(web).to_be_visible()
    await expect(api).to_be_hidden()
    await page.select_option("#state", "")
    await page.fill("#q", "apps/api")
    await expect(web).to_be_hidden()
    await expect(api).to_be_visible()
    await expect(page.locator("#shown")).to_have_text("1 of 2 shown")

    # Fixed again: the row comes back to succeeded, still without a reload.
    fixed = await p.push({"apps/web/broken.yaml": None, **app_files(p.ns, greeting="hi")}, "fix")
    await page.fill("#q", "")
    await expect(web.locator(".outcome")).to_contain_text("succeeded", timeout=LIVE)
    await expect(web).to_contain_text(fixed.sha[:7])
    assert await page.evaluate("window.__sameDocument === true")


async def test_keyboard_reaches_every_control_and_text_meets_contrast(
    pipeline: MakePipeline, page: Page
) -> None:
    p = await pipeline()
    await page.goto(p.url)
    await expect(page.locator("#app-web .outcome")).to_contain_text("succeeded", timeout=LIVE)

    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    focused = []
    for _ in range(4):
        await page.keyboard.press("Tab")
        focused.append(
            await page.evaluate("document.activeElement.id || document.activeElement.textContent")
        )
    assert focused[:3] == ["q", "state", "web"], focused
    # The focused link is outlined (visible focus), and Enter follows it.
    await page.keyboard.press("Shift+Tab")
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{p.url}apps/web")

    await page.goto(p.url)
    ratios = await page.evaluate(CONTRAST_JS)
    low = {text: ratio for text, ratio in ratios if ratio < 4.5}
    assert ratios and not low, f"text below WCAG AA 4.5:1: {low}"


CONTRAST_JS = """
() => {
  const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (!c.startsWith("rgba(0, 0, 0, 0)") && c !== "transparent") return c;
    }
    return "rgb(255, 255, 255)";
  };
  const out = [];
  for (const el of document.querySelectorAll(".badge, th, td, a, label, h1, .muted, .live, code")) {
    if (!el.textContent.trim() || el.offsetParent === null) continue;
    const fg = lum(rgb(getComputedStyle(el).color)), bg = lum(rgb(background(el)));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    out.push([el.textContent.trim().slice(0, 40), Math.round(ratio * 100) / 100]);
  }
  return out;
}
"""


async def test_every_state_has_its_icon_in_the_stylesheet(page: Page) -> None:
    """The icons the server's table names are the ones the stylesheet draws."""
    css = (Path(__file__).resolve().parents[2] / "dashboard/static/dashboard.css").read_text()
    badges = "".join(f'<span class="badge st-{k.replace(" ", "-")}">{k}</span>' for k in STATES)
    await page.set_content(f"<style>{css}</style>{badges}")
    for state, (icon, _) in STATES.items():
        selector = f".st-{state.replace(' ', '-')}"
        content = await page.locator(selector).evaluate(
            "e => getComputedStyle(e, '::before').content"
        )
        assert content.startswith(f'"{icon}'), (state, content)


async def test_a_suspended_app_says_so_live_and_resuming_clears_it(
    pipeline: MakePipeline, page: Page, tmp_path: Path
) -> None:
    p = await pipeline()
    await page.goto(p.url)
    web = page.locator("#app-web")
    await expect(web.locator(".outcome")).to_contain_text("succeeded", timeout=LIVE)

    code, out, err = await gitops(p.config, tmp_path, "suspend", "web", "--reason", "change freeze")
    assert code == 0, (out, err)
    await expect(web.locator(".outcome")).to_contain_text("suspended", timeout=LIVE)
    await expect(web.locator(".outcome")).to_contain_text("change freeze")
    await page.select_option("#state", "suspended")
    await expect(web).to_be_visible()
    await expect(page.locator("#app-api")).to_be_hidden()

    code, out, err = await gitops(p.config, tmp_path, "resume", "web")
    assert code == 0, (out, err)
    await expect(web).to_be_hidden(timeout=LIVE)
    await page.select_option("#state", "")
    await expect(web.locator(".outcome")).not_to_contain_text("suspended")
