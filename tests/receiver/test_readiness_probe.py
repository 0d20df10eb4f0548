"""The readiness probe on the bed's Apache Kafka asks about the receiver's own topics only.

The broker is shared by every test of the run (thousands of topics); a probe that asked
for the whole cluster's metadata got all of them back once a second and decoded them on
the receiver's event loop, in the way of every webhook in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.protocol.metadata import MetadataRequest

from receiver.publishing import Producer, Publisher, default_producer
from schemas import GitopsConfig, KafkaSettings, Topics


async def test_probe_asks_the_broker_for_the_push_and_request_topics_only(
    config: GitopsConfig, topics: Topics
) -> None:
    answered: list[list[tuple[int, str]]] = []

    def recording(settings: KafkaSettings) -> Producer:
        producer = default_producer(settings)
        send = producer.client.send

        async def recorded_send(node_id: Any, request: Any, **options: Any) -> Any:
            response = await send(node_id, request, **options)
            if isinstance(request, MetadataRequest):
                answered.append([(t[0], t[1]) for t in response.topics])
            return response

        producer.client.send = recorded_send
        return producer

    async with Publisher(config.kafka, producer_factory=recording, probe_interval=0.05) as pub:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while len(answered) < 3 or not pub.ready:
            assert loop.time() < deadline, f"no ready probes within 15 s: {answered}"
            await asyncio.sleep(0.02)

    ours = [(0, topics.push_events), (0, topics.sync_requests)]
    assert all(sorted(answer) == sorted(ours) for answer in answered), answered[:3]
