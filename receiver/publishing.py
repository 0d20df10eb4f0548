"""The Kafka side of the receiver: one producer, publishing that waits for acknowledgement.

A delivery is answered 202 only once the broker acknowledged every one of its messages,
so publishing sends all of them first (letting the producer batch them) and then waits
for all their futures. The producer connects in the background and reconnects on its
own, so the receiver starts and answers `/healthz` while the broker is still coming up;
`/readyz` follows `ready`, which a periodic metadata probe keeps honest when the broker
hangs without closing connections. A broker that refuses what the configuration asks
(an idempotent producer) is not retried: `wait()` raises `IdempotenceRefused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    BrokerResponseError,
    IncompatibleBrokerVersion,
    KafkaError,
    NodeNotReadyError,
)
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.protocol.metadata import MetadataRequest

from schemas.config import KafkaSettings
from schemas.errors import IdempotenceRefused
from schemas.topics import Topics

log = logging.getLogger("receiver.publishing")

CLOUDEVENTS_HEADERS: list[tuple[str, bytes]] = [
    ("content-type", b"application/cloudevents+json; charset=utf-8")
]


class PublishError(Exception):
    """The broker did not acknowledge in time; the sender should retry (answered 503)."""


@dataclass(frozen=True)
class Message:
    topic: str
    key: bytes
    value: bytes


class Producer(Protocol):
    """The part of `AIOKafkaProducer` the receiver uses; a test may pass another transport."""

    client: Any

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]: ...


ProducerFactory = Callable[[KafkaSettings], Producer]


PRODUCER_PATIENCE = 6
"""How many answer timeouts the producer itself keeps waiting for an acknowledgement."""

MAX_BATCH_BYTES = 512 * 1024
"""Bytes of messages one partition's batch may hold (aiokafka's default is 16 KiB).

aiokafka has one produce request in flight per broker and one batch per partition in
it; every delivery of a repository goes to the same partition (keyed by its URL), so
with the default a burst of concurrent webhooks queues behind 16 KiB batches, each a
full broker round trip, and the waiting senders spin on the drain. Measured with 64
concurrent senders on one partition: 5,900 -> 24,000 messages/s and a quarter of the
client CPU per message. Half of Kafka's default `message.max.bytes` (1 MiB) keeps
a full batch acceptable to a broker with default limits.
"""


class KeyPartitioner:
    """aiokafka's default partitioning (Kafka's murmur2 of the key), remembered per key.

    Keys are registered repository URLs and app names, a few per configuration, and
    aiokafka computes murmur2 in pure Python for every message (about 8 us each, two
    messages per webhook). The partition must stay the one every other Kafka client picks
    for the key, so the syncer's own requests for an app land where the webhook's do:
    only the hash is cached, never a different rule. Unkeyed messages (none here) go
    to aiokafka's default.
    """

    MAX_KEYS = 10_000
    """Bound on remembered keys; the cache starts over when a configuration has more."""

    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(DefaultPartitioner()(key, all_partitions, available))
        masked = self._hashes.get(key)
        if masked is None:
            if len(self._hashes) >= self.MAX_KEYS:
                self._hashes.clear()
            masked = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[masked % len(all_partitions)]


def default_producer(settings: KafkaSettings) -> Producer:
    """An aiokafka producer with `producer_options()`, but more patient than the HTTP answer.

    The sender is answered 503 after `kafka.request_timeout`; the produce request may still
    be sitting in a stalled broker's socket and be written when it recovers. If the
    producer gave up at the same moment, the host's retry would publish a second copy.
    Waiting longer lets that first attempt complete and be recorded, so the retry finds it.
    """
    options = settings.producer_options()
    answer_ms = int(settings.request_timeout.total_seconds() * 1000)
    options["request_timeout_ms"] = max(30_000, PRODUCER_PATIENCE * answer_ms)
    options["max_batch_size"] = MAX_BATCH_BYTES
    options["partitioner"] = KeyPartitioner()
    producer: Producer = AIOKafkaProducer(**options)
    return producer


class Publisher:
    """Owns the producer: connect with back-off, probe the broker, publish, close once."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        producer_factory: ProducerFactory = default_producer,
        probe_interval: float = 1.0,
    ) -> None:
        self._settings = settings
        self._factory = producer_factory
        self._probe_interval = probe_interval
        self._timeout = settings.request_timeout.total_seconds()
        topics = Topics(settings.topic_prefix)
        self._probe_topics = [topics.push_events, topics.sync_requests]
        self._producer: Producer | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = False
        self._closed = False
        self._refused: IdempotenceRefused | None = None
        self._ended = asyncio.Event()

    @property
    def ready(self) -> bool:
        """True while the producer is connected and the broker answers."""
        return self._ready and self._producer is not None

    async def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name="receiver-producer")
            self._task.add_done_callback(_log_unexpected_exit)

    async def publish(self, messages: Sequence[Message]) -> None:
        """Send every message, then wait until the broker acknowledged all of them.

        Raises `PublishError` when the producer is not connected or the broker fails or
        does not answer; no caller-side timeout is applied here, the producer's own
        request timeout bounds the wait.
        """
        producer = self._producer
        if producer is None:
            raise PublishError("not connected to the broker")
        try:
            futures = [
                await producer.send(m.topic, m.value, key=m.key, headers=CLOUDEVENTS_HEADERS)
                for m in messages
            ]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            self._ready = False
            raise PublishError(f"the broker did not acknowledge: {type(exc).__name__}") from exc
        self._ready = True

    async def wait(self) -> None:
        """Until `close()`, or until the broker refused the configuration (raised here).

        A broker that is down or slow is retried for ever and never ends the wait; only a
        refusal that retrying cannot change does (`IdempotenceRefused`).
        """
        await self._ended.wait()
        if self._refused is not None:
            raise self._refused

    def mark_unresponsive(self) -> None:
        """A publish was not acknowledged in time: stop reporting ready until the probe passes."""
        self._ready = False

    async def close(self) -> None:
        """Stop probing and flush/stop the producer; safe to call more than once."""
        self._closed = True
        self._ended.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        producer, self._producer = self._producer, None
        self._ready = False
        if producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await producer.stop()

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _run(self) -> None:
        backoff = 0.2
        while self._producer is None:
            producer = self._factory(self._settings)
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                with contextlib.suppress(KafkaError, OSError):
                    await producer.stop()
                refused = _refusal(self._settings, exc)
                if refused is not None:
                    self._refused = refused
                    self._ended.set()
                    return
                log.warning(
                    "broker not reachable, retrying",
                    extra={"bootstrap": self._settings.bootstrap, "error": type(exc).__name__},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._producer = producer
            self._ready = True
            log.info("connected to the broker", extra={"bootstrap": self._settings.bootstrap})
        while True:
            await asyncio.sleep(self._probe_interval)
            await self._probe(self._producer)

    async def _probe(self, producer: Producer) -> None:
        """Ask for our topics' metadata: a frozen or unreachable broker makes us not ready."""
        was = self._ready
        try:
            async with asyncio.timeout(min(self._timeout, 2.0)):
                await ask_metadata(producer.client, self._probe_topics)
            self._ready = True
        except (KafkaError, OSError, TimeoutError):
            self._ready = False
        if was != self._ready:
            log.warning("broker %s", "answering again" if self._ready else "not answering")


async def ask_metadata(client: Any, topics: list[str]) -> None:
    """One metadata request for `topics` only, to a broker the client knows.

    Not the whole cluster's metadata (aiokafka's `fetch_all_metadata`): its answer grows
    with every topic of the cluster, and aiokafka decodes it on the event loop in one go,
    so on a broker with thousands of topics each probe stalled every webhook in flight
    (figures in docs/performance.md, "Receiver on real Kafka"). Asking never creates a
    topic, even on a broker that auto-creates them.
    """
    node = client.get_random_node()
    if node is None:
        raise NodeNotReadyError("no broker known")
    await client.send(node, MetadataRequest(topics, allow_auto_topic_creation=False))


def _refusal(settings: KafkaSettings, exc: BaseException) -> IdempotenceRefused | None:
    """The error of a failed `producer.start()` as a refusal of idempotence, if it is one.

    The one place the receiver converts that aiokafka error. aiokafka's `start()` is a
    bootstrap, which raises only `KafkaConnectionError` when no broker answers, then (with
    idempotence on) InitProducerId, which retries lost connections, timeouts and moved
    coordinators itself and raises only on an answer retrying cannot change: a
    non-retriable error code (Tansu answers `UnknownError`) or a broker without the API
    (`IncompatibleBrokerVersion`). Those are the refusal; anything else is an outage.
    """
    if not settings.idempotence:
        return None
    refused = isinstance(exc, IncompatibleBrokerVersion) or (
        isinstance(exc, BrokerResponseError) and not exc.retriable
    )
    return IdempotenceRefused(settings.bootstrap, type(exc).__name__) if refused else None


def _log_unexpected_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("producer task stopped", exc_info=task.exception())
