"""Nothing lost, nothing doubled: redeliveries, concurrent duplicates and broker outages."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import aiohttp

from gitops.broker import EmbeddedBroker
from gitops.topics import ensure_topics
from receiver.service import Receiver
from schemas import Topics
from tests.receiver import hosts
from tests.receiver.conftest import Post, make_config, wait_ready
from tests.support.bed import RealKafka
from tests.support.kafka import read_topic

PUSH = "github/push-branch-update.json"


def deliveries(records: list) -> Counter[str]:  # type: ignore[type-arg]
    return Counter(json.loads(r.value)["data"]["delivery_id"] for r in records)


async def test_redelivery_with_the_same_id_is_acknowledged_and_published_once(
    post: Post, kafka: RealKafka, topics: Topics
) -> None:
    body = hosts.sample(PUSH)
    headers = hosts.github(body, "hello-new", delivery="redelivered-1")
    first = await post("github", body, headers)
    again = await post("github", body, headers)

    assert first[0] == again[0] == 202
    assert again[1] == {**first[1], "duplicate": True}
    await asyncio.sleep(0.3)
    pushes = await read_topic(kafka.bootstrap, topics.push_events, idle=0.5)
    requests = await read_topic(kafka.bootstrap, topics.sync_requests, idle=0.5)
    assert deliveries(pushes) == deliveries(requests) == {"redelivered-1": 1}


async def test_concurrent_duplicates_are_published_once(
    post: Post, kafka: RealKafka, topics: Topics
) -> None:
    body = hosts.sample(PUSH)
    headers = hosts.github(body, "hello-new", delivery="burst-1")
    answers = await asyncio.gather(*(post("github", body, headers) for _ in range(20)))

    assert [status for status, _, _ in answers] == [202] * 20
    pushes = await read_topic(kafka.bootstrap, topics.push_events, idle=0.5)
    assert deliveries(pushes) == {"burst-1": 1}


async def test_broker_outage_answers_503_then_every_accepted_delivery_is_published_once(
    tansu: EmbeddedBroker, http: aiohttp.ClientSession
) -> None:
    """On a Tansu of the test's own: pausing the shared Kafka would stall every other test."""
    config = make_config(tansu.bootstrap, "gitops", request_timeout="1s", tansu=True)
    await ensure_topics(config.kafka)
    body = hosts.sample(PUSH)
    accepted: list[str] = []

    async with Receiver(config, probe_interval=0.2) as receiver:
        await wait_ready(receiver)

        async def deliver(delivery: str) -> tuple[int, str | None]:
            headers = hosts.github(body, "hello-new", delivery=delivery)
            async with http.post(f"{receiver.url}/hooks/github", data=body, headers=headers) as r:
                if r.status == 202:
                    accepted.append(delivery)
                return r.status, r.headers.get("Retry-After")

        async def ready() -> int:
            async with http.get(f"{receiver.url}/readyz") as r:
                return r.status

        assert await deliver("before-outage") == (202, None)
        tansu.pause()
        try:
            assert await deliver("during-outage") == (503, "5")
            assert await ready() == 503
        finally:
            tansu.resume()

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while await ready() != 200:
            assert loop.time() < deadline, "receiver did not become ready after the outage"
            await asyncio.sleep(0.1)
        # The host retries the refused delivery; new ones arrive too.
        assert (await deliver("during-outage"))[0] == 202
        assert await deliver("after-outage") == (202, None)

    pushes = await read_topic(tansu.bootstrap, "gitops.push-events", idle=1.0)
    requests = await read_topic(tansu.bootstrap, "gitops.sync-requests", idle=1.0)
    expected = dict.fromkeys(accepted, 1)
    assert deliveries(pushes) == deliveries(requests) == expected
