"""Read the event trail back from Kafka, for the commands that show it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from schemas.events import AnyEvent, parse_event


async def read_events(
    bootstrap: str,
    topics: Sequence[str],
    *,
    follow: bool = False,
    since: datetime | None = None,
    idle: float = 1.0,
    from_end: bool = False,
    positioned: asyncio.Event | None = None,
) -> AsyncIterator[AnyEvent]:
    """Yield events of `topics` oldest first; without `follow`, stop once nothing new arrives."""
    async for record in read_records(
        bootstrap, topics, follow=follow, idle=idle, from_end=from_end, positioned=positioned
    ):
        if record.value is None:
            continue
        try:
            event = parse_event(record.value)
        except ValidationError:
            continue
        if since is not None and event.time < since:
            continue
        yield event


async def read_records(
    bootstrap: str,
    topics: Sequence[str],
    *,
    follow: bool = False,
    idle: float = 1.0,
    from_end: bool = False,
    positioned: asyncio.Event | None = None,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Yield the records of `topics` oldest first (keys and tombstones too).

    No consumer group is joined, so reading never disturbs the syncers' offsets and starts
    at once (a group join takes seconds on some brokers).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await consumer.start()  # inside: a failed bootstrap still closes its client
        partitions: list[TopicPartition] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            await consumer._client.force_metadata_update()  # fresh topic list
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if partitions:
                break
        if not partitions:
            return
        consumer.assign(partitions)
        if from_end:
            await consumer.seek_to_end(*partitions)
            for tp in partitions:  # resolve the end offsets now, before anyone publishes
                await consumer.position(tp)
        else:
            await consumer.seek_to_beginning(*partitions)
        if positioned is not None:
            positioned.set()
        last = time.monotonic()
        while follow or time.monotonic() - last < idle:
            batch = await consumer.getmany(timeout_ms=200)
            records = sorted(
                (r for rs in batch.values() for r in rs), key=lambda r: (r.timestamp, r.offset)
            )
            for record in records:
                last = time.monotonic()
                yield record
    finally:
        await consumer.stop()
