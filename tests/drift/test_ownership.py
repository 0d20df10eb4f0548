"""Ownership: a syncer checks exactly the apps whose requests land on its partitions."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from gitops.topics import ensure_topics
from schemas import KafkaSettings, Topics
from syncer.ownership import Ownership, partition_of
from tests.support.bed import RealKafka
from tests.support.kafka import read_topic

PARTITIONS = 6


async def test_an_apps_partition_is_where_the_producer_puts_its_requests(
    kafka: RealKafka,
) -> None:
    settings = KafkaSettings(
        bootstrap=kafka.bootstrap, topic_prefix=kafka.topic_prefix, partitions=PARTITIONS
    )
    await ensure_topics(settings)
    topic = Topics(kafka.topic_prefix).sync_requests
    apps = [f"app-{i}" for i in range(40)]
    producer = AIOKafkaProducer(**settings.producer_options())
    await producer.start()
    try:
        for app in apps:
            await producer.send_and_wait(topic, b"{}", key=app.encode())
    finally:
        await producer.stop()
    records = await read_topic(kafka.bootstrap, topic, expect=len(apps))
    landed = {r.key.decode(): r.partition for r in records if r.key}
    assert landed == {app: partition_of(app, PARTITIONS) for app in apps}


def test_every_app_has_exactly_one_owner_among_members_splitting_the_partitions() -> None:
    members = [Ownership("t.sync-requests") for _ in range(3)]
    for index, member in enumerate(members):
        member.assigned({p for p in range(PARTITIONS) if p % 3 == index}, PARTITIONS)
    apps = [f"app-{i}" for i in range(100)]
    for app in apps:
        assert sum(member.owns(app) for member in members) == 1, app


def test_nothing_is_owned_before_the_first_assignment() -> None:
    assert not Ownership("t.sync-requests").owns("web")
