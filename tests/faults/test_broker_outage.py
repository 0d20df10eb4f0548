"""A 10-second broker freeze in the middle of a stream of 200 signed GitHub webhooks.

What a Git host (and its user) observes: while the broker is frozen (SIGSTOP) the
receiver answers 503 with `Retry-After` and `/readyz` says not ready; after the broker
resumes (SIGCONT) the same receiver process is ready again, the refused deliveries are
accepted when the host retries them, and every delivery is on the topic exactly once —
none lost, none doubled (a publish that was refused in time but written late is
recognised when the host retries, so it is not published twice).

The broker is a Tansu of this test's own (`tansu`, with `kafka.idempotence: false`): a
freeze of the test bed's Kafka would stall every other test of the run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import aiohttp
import pytest

from gitops.broker import EmbeddedBroker
from gitops.topics import ensure_topics
from receiver.service import Receiver
from schemas import Topics
from tests.receiver import hosts
from tests.receiver.conftest import make_config, wait_ready
from tests.security.figures import record
from tests.support.kafka import read_topic

pytestmark = pytest.mark.faults

PUSH = "github/push-branch-update.json"
DELIVERIES = 200
OUTAGE = 10.0
SPACING = 0.07  # one new delivery every 70 ms: the stream spans the whole outage


async def test_broker_freeze_during_200_webhooks_loses_and_doubles_nothing(
    tansu: EmbeddedBroker,
) -> None:
    config = make_config(tansu.bootstrap, "gitops", request_timeout="1s", tansu=True)
    await ensure_topics(config.kafka)
    topic = Topics(config.kafka.topic_prefix).push_events
    body = hosts.sample(PUSH)
    answers: dict[str, tuple[int, str | None]] = {}
    readiness: list[tuple[float, int]] = []
    stopped = asyncio.Event()

    async with aiohttp.ClientSession() as http, Receiver(config, probe_interval=0.2) as receiver:
        await wait_ready(receiver)

        async def deliver(delivery: str) -> tuple[int, str | None]:
            headers = hosts.github(body, "hello-new", delivery=delivery)
            async with http.post(f"{receiver.url}/hooks/github", data=body, headers=headers) as r:
                await r.read()
                return r.status, r.headers.get("Retry-After")

        async def one(index: int) -> None:
            await asyncio.sleep(index * SPACING)
            delivery = f"stream-{index:03d}"
            answers[delivery] = await deliver(delivery)

        async def watch_readiness() -> None:
            while not stopped.is_set():
                async with http.get(f"{receiver.url}/readyz") as r:
                    readiness.append((time.monotonic(), r.status))
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch_readiness())
        stream = asyncio.gather(*(one(i) for i in range(DELIVERIES)))
        await asyncio.sleep(1.0)
        frozen_at = time.monotonic()
        tansu.pause()
        try:
            await asyncio.sleep(OUTAGE)
        finally:
            tansu.resume()
        resumed_at = time.monotonic()
        await stream
        deadline = time.monotonic() + 20
        while not readiness or readiness[-1][1] != 200:
            assert time.monotonic() < deadline, "the receiver did not become ready again"
            await asyncio.sleep(0.1)
        stopped.set()
        await watcher

        refused = sorted(d for d, (status, _) in answers.items() if status != 202)
        retried = {d: await deliver(d) for d in refused}  # the host's retries

    statuses = Counter(status for status, _ in answers.values())
    assert set(statuses) <= {202, 503}, statuses
    assert all(after == "5" for status, after in answers.values() if status == 503)
    assert statuses[503] > 0, "the outage refused nothing: the stream missed it"
    assert all(status == 202 for status, _ in retried.values()), retried
    during = [status for at, status in readiness if frozen_at + 2.0 < at < resumed_at]
    assert during and set(during) == {503}, readiness
    assert readiness[-1][1] == 200

    records = await read_topic(tansu.bootstrap, topic, expect=DELIVERIES)
    records = max(records, await read_topic(tansu.bootstrap, topic), key=len)
    published = Counter(json.loads(r.value)["data"]["delivery_id"] for r in records)
    lost = sorted(set(answers) - set(published))
    doubled = sorted(d for d, n in published.items() if n > 1)
    print(
        f"\n{DELIVERIES} deliveries, {OUTAGE:.0f} s broker freeze: {statuses[202]} x 202, "
        f"{statuses[503]} x 503 (all retried: {Counter(s for s, _ in retried.values())}); "
        f"on the topic: {len(published)} distinct, lost {len(lost)}, doubled {len(doubled)}"
    )
    record(
        "broker frozen 10 s during 200 signed webhooks",
        "every 202 is on the topic exactly once; every refusal is a 503 with Retry-After",
        tried=DELIVERIES + len(retried),
        accepted=statuses[202] + sum(s == 202 for s, _ in retried.values()),
        lost=len(lost),
        duplicated=len(doubled),
        errors_5xx=sum(n for s, n in statuses.items() if s >= 500 and s != 503),
        notes=f"{statuses[503]} answered 503 during the freeze, all accepted when retried",
    )
    assert lost == [] and doubled == []
    assert published == dict.fromkeys(answers, 1)
