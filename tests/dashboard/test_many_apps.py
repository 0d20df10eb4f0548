"""The Apps and Events pages with 1,000 apps, in Chromium: one page of rows at a time,
failing apps first, filters over every app (not only the rows loaded), and more on demand."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Page, expect

from dashboard.listing import PAGE_ROWS
from dashboard.service import Dashboard
from gitops.topics import ensure_topics
from schemas import GitopsConfig
from tests.dashboard.test_apps_page import LIVE
from tests.support.bed import Bed, RealKafka

APPS = 1000
SYNCED = 250
"""Apps given an outcome: 250 events, two and a half pages of the Events table. (No
requests: read from another topic, one could land after its outcome and mark it syncing.)"""


def many_apps(kafka: RealKafka, kubeconfig: str) -> GitopsConfig:
    return GitopsConfig.model_validate(
        {
            "kafka": {"bootstrap": kafka.bootstrap, "topic_prefix": kafka.topic_prefix},
            "clusters": {"bed": {"kubeconfig": kubeconfig}},
            "repositories": {"platform": {"url": "https://github.com/acme/platform.git"}},
            "apps": {
                f"app-{i:04d}": {"repo": "platform", "path": f"apps/app-{i:04d}", "cluster": "bed"}
                for i in range(APPS)
            },
        }
    )


def cloud_event(type_: str, data: dict[str, object]) -> bytes:
    return orjson.dumps(
        {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/tests", "type": type_,
         "time": datetime.now(UTC).isoformat(), "datacontenttype": "application/json",
         "data": data}
    )  # fmt: skip


async def sync_history(config: GitopsConfig) -> int:
    """A success for the first apps; the last of them fails instead."""
    producer = AIOKafkaProducer(**config.kafka.producer_options())
    await producer.start()
    prefix, sent = config.kafka.topic_prefix, []
    try:
        for i in range(SYNCED):
            app, sha = f"app-{i:04d}", uuid.uuid4().hex + uuid.uuid4().hex[:8]
            outcome: dict[str, object] = {
                "app": app, "commit": sha, "cluster": "bed", "duration_ms": 50, "objects": []
            }  # fmt: skip
            kind = "gitops.sync.failed" if i == SYNCED - 1 else "gitops.sync.succeeded"
            if i == SYNCED - 1:
                outcome["error"] = "admission webhook denied the request"
            body = cloud_event(kind, outcome)
            sent.append(await producer.send(f"{prefix}.sync-events", body, key=app.encode()))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return len(sent)


@pytest.fixture
async def thousand(kafka: RealKafka, bed: Bed) -> AsyncIterator[Dashboard]:
    assert bed.kubeconfig is not None
    config = many_apps(kafka, str(bed.kubeconfig))
    await ensure_topics(config.kafka)
    sent = await sync_history(config)
    async with Dashboard(config, host="127.0.0.1", port=0) as ui:
        await asyncio.wait_for(ui.trail.caught_up.wait(), 60)
        for _ in range(600):
            if ui.trail.last_seq >= sent:
                break
            await asyncio.sleep(0.1)
        assert ui.trail.last_seq >= sent, (ui.trail.last_seq, sent)
        yield ui


async def test_the_filter_finds_an_app_beyond_the_first_page_and_show_more_loads_more(
    thousand: Dashboard, page: Page
) -> None:
    await page.goto(thousand.url)
    rows = page.locator("#apps tbody tr")
    await expect(rows).to_have_count(PAGE_ROWS)
    await expect(page.locator("#count")).to_have_text(str(APPS))
    failing = f"app-{SYNCED - 1:04d}"
    await expect(rows.first).to_have_attribute("id", f"app-{failing}")
    await expect(rows.first.locator(".outcome")).to_contain_text("failed")
    await expect(page.locator("#app-app-0900")).to_have_count(0)

    await page.fill("#q", "apps/app-0900")
    await expect(rows).to_have_count(1, timeout=LIVE)
    await expect(page.locator("#app-app-0900")).to_be_visible()
    await expect(page.locator("#shown")).to_have_text(f"1 of {APPS} shown")
    await expect(page.locator("#more")).to_be_hidden()

    await page.select_option("#state", "never")
    await page.fill("#q", "")
    await expect(page.locator("#shown")).to_have_text(f"{APPS - SYNCED} of {APPS} shown")
    await expect(rows).to_have_count(PAGE_ROWS)
    await expect(rows.and_(page.locator("[data-state=never]"))).to_have_count(PAGE_ROWS)

    await page.select_option("#state", "")
    await expect(page.locator("#shown")).to_have_text("")
    await page.focus("#more")
    await page.keyboard.press("Enter")
    await expect(rows).to_have_count(2 * PAGE_ROWS, timeout=LIVE)
    await expect(page.locator("#loaded")).to_have_text(f"{2 * PAGE_ROWS} of {APPS} loaded")
    names = [await r.get_attribute("id") for r in await rows.all()]
    assert len(set(names)) == len(names), "a row was loaded twice"
    assert names[1:] == sorted(names[1:]), "rows after the failing one are not sorted"


async def test_the_events_page_pages_back_through_older_events(
    thousand: Dashboard, page: Page
) -> None:
    await page.goto(f"{thousand.url}events")
    rows = page.locator("#events tbody tr")
    await expect(rows).to_have_count(PAGE_ROWS)
    await page.click("#older")
    await expect(rows).to_have_count(2 * PAGE_ROWS, timeout=LIVE)
    await page.click("#older")
    await expect(rows).to_have_count(SYNCED, timeout=LIVE)
    await expect(page.locator("#older")).to_be_hidden()
    seqs = [int((await r.get_attribute("id") or "ev-0")[3:]) for r in await rows.all()]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == SYNCED, seqs[:5]
