"""Notification delivery latency on the real test bed: outcome published -> provider answered.

A real `python -m gitops notifier` process (its own consumer group) reads the bed's Apache
Kafka; outcome events are published at a fixed rate by the syncer's own `Reporter`; three
local endpoints on 127.0.0.1 stand in for the providers (a GitHub-shaped status API, a
Slack-shaped webhook, a generic webhook) and record when each notification arrives. The
latency of one notification is its arrival minus the event's `time` (set as it is
published): Kafka, the notifier's poll, rendering, the HTTP request. A plain consumer in
this process reads the same events as the floor (publish -> consumed). Rate limits are
raised for the run, so the figures are latency, not pacing. The run's topics are deleted
at the end.

    python bench/notify_latency.py --testbed /path/to/bed [--events 300] [--rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.onbed import add_testbed_argument, bed_from, delete_topics, machine, run_id
from gitops.broker import free_port
from gitops.topics import ensure_topics
from schemas import GitopsConfig, Topics
from schemas.events import SyncRequested, SyncRequestedData, parse_event
from schemas.types import AppName, CommitSha
from syncer.reporting import Outcome, Reporter

APPS = [f"app{i}" for i in range(8)]


class Endpoints:
    """GitHub-, Slack- and webhook-shaped endpoints recording arrival times per commit."""

    def __init__(self) -> None:
        self.arrived: dict[str, dict[str, float]] = {"github": {}, "slack": {}, "webhook": {}}
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.short_to_full: dict[str, str] = {}

    async def github(self, request: web.Request) -> web.Response:
        self.arrived["github"][request.match_info["sha"]] = time.time()
        await request.read()
        return web.json_response({}, status=201)

    async def slack(self, request: web.Request) -> web.Response:
        now = time.time()
        text = (await request.json())["text"]
        for short, full in self.short_to_full.items():
            if short in text:
                self.arrived["slack"][full] = now
        return web.Response(text="ok")

    async def webhook(self, request: web.Request) -> web.Response:
        now = time.time()
        event = json.loads(await request.read())
        self.arrived["webhook"][event["data"]["commit"]] = now
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/repos/{owner}/{repo}/statuses/{sha}", self.github)
        app.router.add_post("/slack", self.slack)
        app.router.add_post("/hook", self.webhook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def config_for(bootstrap: str, prefix: str, port: int) -> dict[str, object]:
    base = f"http://127.0.0.1:{port}"
    return {
        "kafka": {"bootstrap": bootstrap, "topic_prefix": prefix, "partitions": 4},
        "clusters": {"dev": {"in_cluster": True}},
        "repositories": {"shop": {"url": "https://github.com/acme/shop.git"}},
        "apps": {app: {"repo": "shop", "cluster": "dev"} for app in APPS},
        "notifications": [
            {
                "name": "status",
                "on": ["succeeded", "failed"],
                "provider": "github",
                "url": base,
                "token": {"value": "bench-token"},
            },
            {"name": "chat", "on": ["failed"], "provider": "slack", "url": f"{base}/slack"},
            {
                "name": "hook",
                "on": ["succeeded", "failed"],
                "provider": "webhook",
                "url": f"{base}/hook",
            },
        ],
        "notifier": {
            "group_id": f"{prefix}-notifiers",
            "session_timeout": "6s",
            "heartbeat_interval": "1s",
            "rate_limits": {"github": 10000, "slack": 10000, "webhook": 10000},
        },
    }


async def floor_reader(
    bootstrap: str, topic: str, seen: dict[str, float], stop: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batch.values():
                for record in records:
                    event = parse_event(record.value)
                    commit = getattr(event.data, "commit", None)
                    if commit:
                        seen[commit] = now
    finally:
        await consumer.stop()


async def ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise SystemExit(f"the notifier was not ready at {url} within {timeout:.0f} s")


def summary(name: str, latencies: list[float]) -> str:
    if not latencies:
        return f"{name:<8} no deliveries"
    ms = sorted(x * 1000 for x in latencies)
    pct = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return (
        f"{name:<8} n={len(ms):<4} p50 {pct[49]:7.1f} ms  p95 {pct[94]:7.1f} ms"
        f"  p99 {pct[98]:7.1f} ms  max {ms[-1]:7.1f} ms"
    )


async def run(args: argparse.Namespace) -> None:
    bed = bed_from(args.testbed, kube=False)
    assert bed.kafka_bootstrap is not None
    bootstrap = bed.kafka_bootstrap
    prefix = f"bench-notify-{run_id()}"
    endpoints = Endpoints()
    await endpoints.start()
    config = GitopsConfig.model_validate(config_for(bootstrap, prefix, endpoints.port))
    await ensure_topics(config.kafka)
    topics = Topics(prefix)
    workdir = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    config_path = workdir / "gitops.yaml"
    config_path.write_text(yaml.safe_dump(config_for(bootstrap, prefix, endpoints.port)))
    log = (workdir / "notifier.log").open("wb")
    ops_port = free_port()
    notifier = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gitops",
        "notifier",
        "--config",
        str(config_path),
        "--id",
        "bench",
        "--http-port",
        str(ops_port),
        stdout=log,
        stderr=log,
        env={**os.environ, "GITOPS_LOG_LEVEL": "WARNING"},
    )
    floor: dict[str, float] = {}
    stop = asyncio.Event()
    reader = asyncio.create_task(floor_reader(bootstrap, topics.sync_events, floor, stop))
    producer = AIOKafkaProducer(**config.kafka.producer_options())
    await producer.start()
    sent: dict[str, tuple[float, str]] = {}
    try:
        await ready(f"http://127.0.0.1:{ops_port}/readyz")  # a new group reads from the end
        reporter = Reporter(producer, topics, source="/bench/notify")
        interval = 1.0 / args.rate
        started = time.monotonic()
        for i in range(args.events):
            app = APPS[i % len(APPS)]
            commit = os.urandom(20).hex()
            endpoints.short_to_full[commit[:7]] = commit
            request = SyncRequested(
                source="/bench/notify",
                subject=app,
                data=SyncRequestedData(
                    app=AppName(app),
                    repo_url="https://github.com/acme/shop.git",
                    branch="main",
                    commit=CommitSha(commit),
                    reason="webhook",
                ),
            )
            kind = "failed" if i % 4 == 0 else "succeeded"
            outcome = Outcome(request, kind, "dev", error="boom" if kind == "failed" else None)
            event = outcome.event(reporter.source)
            sent[commit] = (event.time.timestamp(), kind)
            await producer.send_and_wait(topics.sync_events, event.to_bytes(), key=app.encode())
            delay = started + (i + 1) * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        deadline = time.monotonic() + 30
        failed = sum(1 for _, kind in sent.values() if kind == "failed")
        while time.monotonic() < deadline and (  # noqa: ASYNC110 - three counters, filled by handlers
            len(endpoints.arrived["github"]) < len(sent)
            or len(endpoints.arrived["webhook"]) < len(sent)
            or len(endpoints.arrived["slack"]) < failed
        ):
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await reader
        await producer.stop()
        notifier.terminate()
        await notifier.wait()
        log.close()
        await endpoints.stop()
        await delete_topics(bootstrap, prefix)
    print(f"notification latency, {args.events} outcomes at {args.rate}/s, {machine()}")
    print(f"run topics {prefix}.* (deleted)")
    print(summary("floor", [floor[c] - t for c, (t, _) in sent.items() if c in floor]))
    for provider in ("github", "slack", "webhook"):
        arrived = endpoints.arrived[provider]
        print(summary(provider, [arrived[c] - t for c, (t, _) in sent.items() if c in arrived]))
    expected = {"github": len(sent), "webhook": len(sent), "slack": failed}
    missing = {
        p: n - len(endpoints.arrived[p])
        for p, n in expected.items()
        if len(endpoints.arrived[p]) < n
    }
    if missing:
        raise SystemExit(
            f"notifications missing after 30 s: {missing} (log {workdir / 'notifier.log'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_testbed_argument(parser)
    parser.add_argument("--events", type=int, default=300, help="outcomes to publish (default 300)")
    parser.add_argument("--rate", type=float, default=20.0, help="outcomes per second (default 20)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
