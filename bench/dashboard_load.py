"""How fast the dashboard's pages load with 1,000 apps, on the real test bed's Kafka.

A run publishes, on topics of its own prefix, what 1,000 apps' first syncs leave behind
(a push per 10 apps, then a request and an outcome of 5 objects per app: 2,100 events),
starts the dashboard in this process against them and, once it has read them all,
measures:

- the server: wall time of `GET /` (all 1,000 rows), `GET /events` (the newest 500
  events), `GET /apps/<one>` over keep-alive HTTP, `--rounds` each, median and max;
- the browser: Debian's Chromium loading each page, from navigation start to the first
  contentful paint and to the `load` event (Paint and Navigation Timing), after one
  warm-up load; median and max. The browser's figures depend on the CPU it gets: the
  machine's load average is printed before and after.

The topics are deleted at the end whatever ends the run. Figures go to
docs/performance.md; the target is < 200 ms per page.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.onbed import add_testbed_argument, bed_from, delete_topics, machine, run_id
from dashboard.service import Dashboard
from gitops.topics import ensure_topics
from schemas import GitopsConfig

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip
TARGET_MS = 200.0


def config(bootstrap: str, prefix: str, kubeconfig: str, apps: int) -> GitopsConfig:
    return GitopsConfig.model_validate(
        {
            "kafka": {"bootstrap": bootstrap, "topic_prefix": prefix, "partitions": 4},
            "clusters": {"bed": {"kubeconfig": kubeconfig}},
            "repositories": {"platform": {"url": "https://github.com/acme/platform.git"}},
            "apps": {
                f"app-{i:04d}": {"repo": "platform", "path": f"apps/app-{i:04d}", "cluster": "bed"}
                for i in range(apps)
            },
        }
    )


def envelope(type_: str, data: dict[str, object]) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/bench",
            "type": type_,
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
            "data": data,
        }
    )


async def publish_history(cfg: GitopsConfig) -> int:
    prefix = cfg.kafka.topic_prefix
    producer = AIOKafkaProducer(**cfg.kafka.producer_options())
    await producer.start()
    sent = 0
    try:
        names = list(cfg.apps)
        for start in range(0, len(names), 10):
            group = names[start : start + 10]
            delivery = str(uuid.uuid4())
            sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
            futures = [await producer.send(
                f"{prefix}.push-events",
                envelope("gitops.push.received", {
                    "provider": "github", "delivery_id": delivery,
                    "repo_url": "github.com/acme/platform", "ref": "refs/heads/main",
                    "after": sha, "apps": group}),
                key=b"github.com/acme/platform",
            )]  # fmt: skip
            for app in group:
                request = {"app": app, "repo_url": "https://github.com/acme/platform.git",
                           "branch": "main", "commit": sha, "reason": "webhook",
                           "delivery_id": delivery}  # fmt: skip
                outcome = {"app": app, "cluster": "bed", "commit": sha, "reason": "webhook",
                           "delivery_id": delivery, "health": "healthy", "duration_ms": 120,
                           "objects": [{"api_version": "v1", "kind": "ConfigMap",
                                        "namespace": "ns", "name": f"cm-{k}",
                                        "action": "created"} for k in range(5)]}  # fmt: skip
                futures.append(await producer.send(
                    f"{prefix}.sync-requests", envelope("gitops.sync.requested", request),
                    key=app.encode()))  # fmt: skip
                futures.append(await producer.send(
                    f"{prefix}.sync-events", envelope("gitops.sync.succeeded", outcome),
                    key=app.encode()))  # fmt: skip
            await asyncio.gather(*futures)
            sent += len(futures)
    finally:
        await producer.stop()
    return sent


async def server_times(base: str, paths: list[str], rounds: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {path: [] for path in paths}
    sizes: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:
        for _ in range(rounds):
            for path in paths:
                started = time.perf_counter()
                async with http.get(base + path) as answer:
                    sizes[path] = len(await answer.read())
                    assert answer.status == 200, (path, answer.status)
                found[path].append((time.perf_counter() - started) * 1000)
    print("page sizes: " + ", ".join(f"{p} {n / 1024:.0f} KiB" for p, n in sizes.items()))
    return found


async def browser_times(
    base: str, paths: list[str], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(first contentful paint, load event) per page, ms from navigation start."""
    from playwright.async_api import async_playwright

    found: dict[str, list[float]] = {path: [] for path in paths}
    painted: dict[str, list[float]] = {path: [] for path in paths}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page()
            for path in paths:
                await page.goto(base + path)  # warm-up: static files cached
                for _ in range(rounds):
                    await page.goto(base + path, wait_until="load")
                    timing = await page.evaluate(
                        "(() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return n.loadEventEnd - n.startTime; })()"
                    )
                    found[path].append(float(timing))
                    paint = await page.evaluate(
                        "(() => { const p = performance.getEntriesByName('first-contentful-paint');"
                        " return p.length ? p[0].startTime : -1; })()"
                    )
                    painted[path].append(float(paint))
        finally:
            await browser.close()
    return painted, found


def report(title: str, found: dict[str, list[float]]) -> bool:
    print(title)
    ok = True
    for path, times in found.items():
        median, worst = statistics.median(times), max(times)
        ok = ok and median < TARGET_MS
        print(f"  {path:<22} median {median:6.1f} ms   max {worst:6.1f} ms   ({len(times)} loads)")
    return ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_testbed_argument(parser)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--browser-rounds", type=int, default=5)
    args = parser.parse_args()
    bed = bed_from(args.testbed)
    assert bed.kafka_bootstrap is not None and bed.kubeconfig is not None
    prefix = f"bench-ui-{run_id()}"
    cfg = config(bed.kafka_bootstrap, prefix, str(bed.kubeconfig), args.apps)
    print(f"dashboard load: {args.apps} apps on the bed's Kafka ({machine()})")
    try:
        await ensure_topics(cfg.kafka)
        started = time.perf_counter()
        sent = await publish_history(cfg)
        print(f"published {sent} events in {time.perf_counter() - started:.1f} s")
        async with Dashboard(cfg, host="127.0.0.1", port=0) as ui:
            started = time.perf_counter()
            await asyncio.wait_for(ui.trail.caught_up.wait(), 60)
            print(f"dashboard read them in {time.perf_counter() - started:.1f} s")
            assert ui.trail.last_seq >= sent, (ui.trail.last_seq, sent)
            base = ui.url.rstrip("/")
            paths = ["/", "/events", "/apps/app-0500"]
            server = await server_times(base, paths, args.rounds)
            ok = report("server (GET over keep-alive, body read):", server)
            painted, loaded = await browser_times(base, paths, args.browser_rounds)
            report("browser (Chromium, navigation start to first contentful paint):", painted)
            report("browser (Chromium, navigation start to load event):", loaded)
            print(f"machine after the run: {machine()}")
    finally:
        await delete_topics(bed.kafka_bootstrap, prefix)
    print(f"target < {TARGET_MS:.0f} ms per page (server): {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
