"""The `kafka` fixture is a real Kafka broker that independent clients agree on; the
embedded broker (Tansu) leaves no process behind.

The bed's Kafka does not create topics on first use (as production brokers often do not),
so each test creates its own, under its own prefix.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import Consumer

from gitops.broker import EmbeddedBroker
from tests.support.bed import RealKafka
from tests.support.kafka import read_topic


async def create_topic(kafka: RealKafka, suffix: str) -> str:
    """A one-partition topic of this test's own: `<prefix>.<suffix>`."""
    name = f"{kafka.topic_prefix}.{suffix}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    return name


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


async def test_message_produced_is_consumed_by_a_group(kafka: RealKafka, group_id: str) -> None:
    topic = await create_topic(kafka, "topic")
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"app-1", headers=[("h", b"v")])
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
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


async def test_librdkafka_reads_what_aiokafka_wrote(kafka: RealKafka, group_id: str) -> None:
    topic = await create_topic(kafka, "independent")
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=b"k")
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
        consumer.subscribe([topic])
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


async def test_read_topic_returns_every_record_in_order(kafka: RealKafka) -> None:
    topic = await create_topic(kafka, "read")
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, str(i).encode(), key=b"same-key")
    finally:
        await producer.stop()
    records = await read_topic(kafka.bootstrap, topic, expect=5)
    assert [r.value for r in records] == [b"0", b"1", b"2", b"3", b"4"]
