"""The `kafka` fixture is a real Kafka-protocol broker that independent clients agree on."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer

from gitops.broker import EmbeddedBroker
from tests.support.kafka import read_topic


async def test_broker_stops_with_its_fixture_and_leaves_no_process() -> None:
    """Start-up time is measured by `bench/bench_startup.py`, not asserted here."""
    broker = EmbeddedBroker()
    async with broker:
        pid = broker.pid
        assert pid is not None
    import os

    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, "the broker process survived its fixture"


async def test_message_produced_is_consumed_by_a_group(
    kafka: EmbeddedBroker, group_id: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait("bench.topic", b"hello", key=b"app-1", headers=[("h", b"v")])
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        "bench.topic",
        bootstrap_servers=kafka.bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=20)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert (record.key, record.value, list(record.headers)) == (b"app-1", b"hello", [("h", b"v")])


async def test_librdkafka_reads_what_aiokafka_wrote(kafka: EmbeddedBroker, group_id: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait("bench.independent", f"m{i}".encode(), key=b"k")
    finally:
        await producer.stop()

    def consume() -> list[bytes]:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka.bootstrap,
                "group.id": group_id,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe(["bench.independent"])
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        try:
            while len(values) < 3 and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    values.append(message.value())
        finally:
            consumer.close()
        return values

    assert await asyncio.to_thread(consume) == [b"m0", b"m1", b"m2"]


async def test_read_topic_returns_every_record_in_order(kafka: EmbeddedBroker) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait("bench.read", str(i).encode(), key=b"same-key")
    finally:
        await producer.stop()
    records = await read_topic(kafka.bootstrap, "bench.read", expect=5)
    assert [r.value for r in records] == [b"0", b"1", b"2", b"3", b"4"]
