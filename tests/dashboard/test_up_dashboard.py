"""A newcomer's view: `gitops up` prints the dashboard URL, the page shows both example
apps (and the two its app set generates), and the demo push it prints changes the
guestbook row live."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys

from playwright.async_api import Page, expect

from tests.dashboard.test_apps_page import LIVE
from tests.up.test_up import ROOT, Stream, interrupt


async def test_up_prints_the_dashboard_and_the_demo_push_changes_the_row_live(page: Page) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("GITOPS_KAFKA_BOOTSTRAP", "GITOPS_CONFIG")
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gitops", "up", "--syncers", "1",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    stream = Stream(process)
    try:
        url = (await stream.until(r"^dashboard URL\s+(http://127\.0\.0\.1:\d+/)", 90)).group(1)
        command = (await stream.until(r"^\s+(\S+ -m gitops\.demo push --state \S+)$", 10)).group(1)
        await page.goto(url)
        guestbook, monitoring = page.locator("#app-guestbook"), page.locator("#app-monitoring")
        await expect(guestbook.locator(".outcome")).to_contain_text("succeeded", timeout=LIVE)
        await expect(monitoring.locator(".outcome")).to_contain_text("succeeded", timeout=LIVE)
        # The example app set's apps, generated from services/*, have rows of their own.
        for generated in ("backend", "frontend"):
            row = page.locator(f"#app-services-{generated}")
            await expect(row).to_contain_text("set services", timeout=LIVE)
            await expect(row).to_contain_text(f"services/{generated}")
            await expect(row.locator(".outcome")).to_contain_text("succeeded", timeout=LIVE)
        await page.evaluate("window.__sameDocument = true")

        push = await asyncio.create_subprocess_exec(
            *shlex.split(command), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await push.communicate()
        assert push.returncode == 0, out.decode()
        sha = re.search(r"pushed (\w{7})", out.decode())
        assert sha is not None, out.decode()
        await expect(guestbook).to_contain_text(sha.group(1), timeout=LIVE)
        await expect(guestbook.locator(".outcome")).to_contain_text("succeeded")
        assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"

        # A generated app's page reads its inventory and diffs it like a configured one's.
        await page.click("#app-services-backend a")
        await expect(page.locator("dl.spec")).to_contain_text("app set services")
        await expect(page.locator("#objects tbody tr").first).to_be_visible(timeout=20_000)
        await page.click("#diff-button")
        await expect(page.locator("#diff")).to_contain_text("no drift", timeout=30_000)
    finally:
        await page.goto("about:blank")  # its live stream would log the stack going away
        await interrupt(process)
    assert process.returncode == 0
