"""A member's Kafka clients, built from the configuration in one place.

Both members consume in a consumer group with manual commits (`members.commits`), the
session and heartbeat of their own configuration section, and a fetch that waits at
most 50 ms in the broker: push-to-applied and outcome-to-notification latency matter
more than the idle fetches that costs. Both publish with the producer `kafka` describes.
The aiokafka errors that are configuration errors, not outages, are converted here, once:
a refused idempotent producer (`IdempotenceRefused`) and a refused session timeout
(`SessionTimeoutRefused`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    BrokerResponseError,
    IncompatibleBrokerVersion,
    InvalidSessionTimeoutError,
    KafkaError,
)

from schemas import IdempotenceRefused, KafkaSettings, SessionTimeoutRefused


@dataclass(frozen=True)
class Group:
    """The consumer group a member joins, as its section of the configuration sets it."""

    section: str
    """The configuration section of the group's settings (`syncer`, `notifier`)."""
    group_id: str
    session_timeout: timedelta
    heartbeat_interval: timedelta


def group_consumer(
    kafka: KafkaSettings,
    group: Group,
    *,
    client_id: str,
    offset_reset: Literal["earliest", "latest"],
    assignors: Sequence[type] | None = None,
) -> AIOKafkaConsumer:
    """A consumer of `group` that commits only what the member says (not yet started)."""
    options: dict[str, object] = {}
    if assignors is not None:
        options["partition_assignment_strategy"] = tuple(assignors)
    return AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        client_id=client_id,
        group_id=group.group_id,
        enable_auto_commit=False,
        auto_offset_reset=offset_reset,
        session_timeout_ms=int(group.session_timeout.total_seconds() * 1000),
        heartbeat_interval_ms=int(group.heartbeat_interval.total_seconds() * 1000),
        max_poll_interval_ms=300_000,
        fetch_max_wait_ms=50,
        **options,
    )


async def join(consumer: AIOKafkaConsumer, kafka: KafkaSettings, group: Group) -> None:
    """Start `consumer`; `SessionTimeoutRefused` when the broker refuses its session timeout.

    The join answers with the broker's bounds: a setting to change, not an outage.
    """
    try:
        await consumer.start()
    except InvalidSessionTimeoutError as exc:
        with contextlib.suppress(KafkaError, OSError):
            await consumer.stop()
        raise SessionTimeoutRefused(
            kafka.bootstrap,
            group.group_id,
            group.session_timeout,
            setting=f"{group.section}.session_timeout",
        ) from exc


async def start_producer(settings: KafkaSettings) -> AIOKafkaProducer:
    """A started producer; `IdempotenceRefused` when the broker refuses an idempotent one.

    aiokafka's `start()` is a bootstrap, which raises only `KafkaConnectionError` when no
    broker answers, then (with idempotence on) InitProducerId, which retries lost
    connections, timeouts and moved coordinators itself and raises only on an answer
    retrying cannot change: a non-retriable error code (Tansu answers `UnknownError`) or a
    broker without the API (`IncompatibleBrokerVersion`). Those are the refusal; anything
    else stays as it was.
    """
    producer = AIOKafkaProducer(**settings.producer_options())
    try:
        await producer.start()
    except (KafkaError, OSError) as exc:
        with contextlib.suppress(KafkaError, OSError):
            await producer.stop()
        refused = isinstance(exc, IncompatibleBrokerVersion) or (
            isinstance(exc, BrokerResponseError) and not exc.retriable
        )
        if settings.idempotence and refused:
            raise IdempotenceRefused(settings.bootstrap, type(exc).__name__) from exc
        raise
    return producer
