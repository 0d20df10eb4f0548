"""Reading topics back from the real broker, as a user watching Kafka would."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    timeout: float = 10.0,
    idle: float = 0.5,
) -> list[Record]:
    """Every record of `topic` from the beginning, in partition/offset order.

    Stops when `expect` records were read or, without `expect`, once every record that was
    in the topic when the call began has been read and nothing new came for `idle`
    seconds; at `timeout` in any case. Reading up to the end offsets taken at the start
    means a slow first fetch (a busy broker, a partition whose leader was just elected)
    cannot end the read early; the idle wait remains for Tansu, whose end offsets lag.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = None
        deadline = time.monotonic() + timeout
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.05)
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await _end_offsets(consumer, tps, deadline)
        records: list[Record] = []
        positions = dict.fromkeys(tps, 0)
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            for tp, tp_records in batch.items():
                for r in tp_records:
                    records.append(
                        Record(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers))
                    )
                    positions[tp] = r.offset + 1
                    last_new = time.monotonic()
            if expect is not None and len(records) >= expect:
                break
            caught_up = all(positions[tp] >= ends.get(tp, 0) for tp in tps)
            if expect is None and caught_up and time.monotonic() - last_new > idle:
                break
        records.sort(key=lambda r: (r.partition, r.offset))
        return records
    finally:
        await consumer.stop()


async def _end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], deadline: float
) -> dict[TopicPartition, int]:
    """The end offsets now, retried while a new topic's leaders are still being elected."""
    while True:
        try:
            ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
            return ends
        except KafkaError:
            if time.monotonic() >= deadline:
                return {}
            await asyncio.sleep(0.1)
