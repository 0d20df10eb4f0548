"""The App page, in Chromium: objects from the inventory, recent events, the chart, and
the live diff against Git after a real `kubectl edit`, with Secret values never shown."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

from playwright.async_api import Page, expect

from tests.dashboard.conftest import SECRET_VALUE, MakePipeline, app_files, screenshot_path
from tests.dashboard.test_apps_page import LIVE
from tests.drift.test_diff_command import gitops


async def kubectl_edit(kubeconfig: Path, namespace: str, target: str, sed: str) -> None:
    """`kubectl edit` as a person runs it, with `sed -i` as the editor."""
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        namespace,
        "edit",
        target,
        env={**os.environ, "KUBE_EDITOR": f"sed -i -e '{sed}'"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, (out.decode(), err.decode())
    assert "edited" in out.decode(), out.decode()


async def test_the_diff_shows_a_kubectl_edit_and_never_a_secret_value(
    pipeline: MakePipeline, page: Page, kubeconfig: Path, tmp_path: Path
) -> None:
    p = await pipeline()
    await page.goto(p.url)
    await expect(page.locator("#app-web .outcome")).to_contain_text("succeeded", timeout=LIVE)
    # A second sync, so the chart has a line and the events a history.
    pushed = await p.push(app_files(p.ns, greeting="bonjour"), "greeting")
    await expect(page.locator("#app-web")).to_contain_text(pushed.sha[:7], timeout=LIVE)
    await expect(page.locator("#app-web .outcome")).to_contain_text("succeeded")

    await page.click("#app-web a")
    await expect(page.locator("h1")).to_contain_text("web")
    objects = page.locator("#objects table")
    await expect(objects).to_be_visible(timeout=20_000)
    deployment = objects.locator("tr", has_text="Deployment")
    await expect(deployment).to_contain_text("healthy", timeout=10_000)
    await expect(objects.locator("tr", has_text="web-settings")).to_contain_text("configured")
    await expect(objects.locator("tbody tr")).to_have_count(3)
    await expect(page.locator("svg.chart circle")).to_have_count(2)
    await expect(page.locator("#events tbody tr").first).to_contain_text("succeeded")

    await page.click("#diff-button")
    await expect(page.locator("#diff")).to_contain_text(
        "no drift: 3 objects match Git", timeout=30_000
    )

    await kubectl_edit(kubeconfig, p.ns, "deployment/web", "s/^  replicas: 2$/  replicas: 5/")
    other = base64.b64encode(b"changed-by-hand-Zx9").decode()
    await kubectl_edit(
        kubeconfig, p.ns, "secret/web-credentials", f"s/^  password: .*/  password: {other}/"
    )

    await page.click("#diff-button")
    diff = page.locator("#diff")
    await expect(diff).to_contain_text("2 of 3 objects differ from Git", timeout=30_000)
    await expect(diff).to_contain_text(f"Deployment {p.ns}/web: changed spec.replicas")
    await expect(diff.locator(".del", has_text="replicas: 5")).to_have_count(1)
    await expect(diff.locator(".add", has_text="replicas: 2")).to_have_count(1)
    # The Secret's change is visible as a change, its values are not.
    await expect(diff).to_contain_text(f"Secret {p.ns}/web-credentials: changed data.password")
    await expect(diff.locator(".del", has_text="password: <redacted>")).to_have_count(1)
    await expect(diff.locator(".add", has_text="password: <redacted, changed>")).to_have_count(1)
    html = await page.content()
    for value in (SECRET_VALUE, base64.b64encode(SECRET_VALUE.encode()).decode(), other):
        assert value not in html
    # The same diff `gitops diff` prints, line for line.
    code, out, _ = await gitops(p.config, tmp_path, "diff", "web")
    assert code == 1
    shown = await diff.locator("pre.diff").all_inner_texts()
    assert len(shown) == 2
    for text in shown:
        assert text.strip() + "\n" in out
    assert "<redacted, changed>" in out
    for value in (SECRET_VALUE, base64.b64encode(SECRET_VALUE.encode()).decode(), other):
        assert value not in out
    await expect(page.locator("#live")).to_have_text("● live")
    colour = await diff.locator(".add").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour != "rgba(0, 0, 0, 0)", "added lines are coloured"
    await page.screenshot(path=str(screenshot_path(tmp_path, "dashboard-app.png")), full_page=True)
