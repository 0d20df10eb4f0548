"""The Events page, in Chromium: the live trail from Kafka, a push linked to the requests
and outcomes it caused, filters, the pause button, and events this dashboard does not know."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from playwright.async_api import Page, expect

from tests.dashboard.conftest import MakePipeline, Pipeline, app_files, screenshot_path
from tests.dashboard.test_apps_page import LIVE


async def test_a_push_links_to_its_requests_and_outcomes(
    pipeline: MakePipeline, page: Page, tmp_path: Path
) -> None:
    p = await pipeline()
    await page.goto(f"{p.url}events")
    await expect(page.locator("#events tbody tr[data-kind=succeeded]")).to_have_count(
        2, timeout=LIVE
    )
    await page.evaluate("window.__sameDocument = true")

    pushed = await p.push(app_files(p.ns, greeting="hola"), "greeting")
    delivery = page.locator(f"#events tbody tr[data-delivery='{pushed.delivery}']")
    # The push, the request for `web` (only its files changed... and `api` skipped or not
    # requested at all), and the outcome: all arrive live.
    await expect(delivery.and_(page.locator("[data-kind=push]"))).to_have_count(1, timeout=LIVE)
    await expect(delivery.and_(page.locator("[data-kind=succeeded]"))).to_have_count(
        1, timeout=LIVE
    )
    await expect(delivery.and_(page.locator("[data-kind=requested]"))).to_have_count(1)
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    push_row = delivery.and_(page.locator("[data-kind=push]"))
    await expect(push_row).to_contain_text("github push to refs/heads/main")
    await expect(push_row).to_contain_text("→ web")
    await page.screenshot(path=str(screenshot_path(tmp_path, "dashboard-events.png")))

    await push_row.locator("a.delivery").click()
    await expect(page.locator("h1")).to_contain_text(pushed.delivery)
    rows = page.locator("#events tbody tr")
    kinds = [await r.get_attribute("data-kind") for r in await rows.all()]
    assert sorted(kinds) == ["push", "requested", "succeeded"], kinds
    await expect(rows.locator("code", has_text=pushed.sha[:7])).to_have_count(3)


async def test_filters_pause_and_unknown_events(pipeline: MakePipeline, page: Page) -> None:
    p = await pipeline()
    await page.goto(f"{p.url}events")
    rows = page.locator("#events tbody tr")
    await expect(rows.and_(page.locator("[data-kind=succeeded]"))).to_have_count(2, timeout=LIVE)

    await page.select_option("#app", "api")
    await expect(rows.and_(page.locator("[data-apps=web]")).first).to_be_hidden()
    await expect(rows.and_(page.locator("[data-apps=api]")).first).to_be_visible()
    await page.select_option("#app", "")
    await page.select_option("#kind", "requested")
    await expect(rows.and_(page.locator("[data-kind=succeeded]")).first).to_be_hidden()
    await page.select_option("#kind", "")

    # Paused (from the keyboard), new events are held and counted, then shown on resume.
    await page.focus("#pause")
    await page.keyboard.press("Space")
    await expect(page.locator("#pause")).to_have_attribute("aria-pressed", "true")
    count = await rows.count()
    await publish(
        p,
        {"type": "gitops.sync.suspended", "data": {"app": "web", "reason": "freeze", "by": "ops"}},
    )
    await expect(page.locator("#held")).to_have_text("1 new while paused", timeout=LIVE)
    assert await rows.count() == count
    await page.keyboard.press("Enter")
    await expect(page.locator("#pause")).to_have_attribute("aria-pressed", "false")
    unknown = rows.and_(page.locator("[data-kind='sync.suspended']"))
    await expect(unknown).to_have_count(1)
    await expect(unknown).to_contain_text("reason=freeze · by=ops")

    # A known type with a field this dashboard does not know yet shows the field.
    await publish(
        p,
        {"type": "gitops.sync.succeeded",
         "data": {"app": "api", "cluster": "dev", "duration_ms": 5, "objects": [], "wave": 3}},
    )  # fmt: skip
    await page.fill("#q", "wave=3")
    await expect(rows.filter(has_text="wave=3")).to_have_count(1, timeout=LIVE)
    await page.goto(p.url)
    await expect(page.locator("#app-api")).to_contain_text("5 ms")


async def publish(p: Pipeline, event: dict[str, object]) -> None:
    """A CloudEvent on sync-events as a newer producer might publish it."""
    config = p.config
    envelope = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/tests",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        **event,
    }
    producer = AIOKafkaProducer(**config.kafka.producer_options())
    await producer.start()
    try:
        topic = f"{config.kafka.topic_prefix}.sync-events"
        await producer.send_and_wait(topic, orjson.dumps(envelope), key=b"web")
    finally:
        await producer.stop()
