"""The notifier process: one composition root that builds every part and wires them.

`Notifier` (an async context manager) owns the HTTP session to the providers, the Kafka
producer (for `gitops.notification.failed`) and consumer, and the dispatcher; `stop()` is
safe to call twice and closes them in reverse order. `run_notifier` is the body of `gitops
notifier`: it runs a `Notifier` until SIGTERM/SIGINT.

The consumer joins `notifier.group_id` on both `<prefix>.sync-events` and
`<prefix>.sync-requests` with the range assignor, so partition N of both topics (the same
apps) belongs to one member. A new group starts at the end of the topics: history is not
news. Each assigned partition's start is committed at once, so a partition that moves to
another member before any record came is not started at the end a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack

import aiohttp
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from credentials import HostCredentials, InstallationTokens
from members.kafka import Group, group_consumer, join, start_producer
from members.ops import OpsServer
from members.running import Member, default_member_id, run_until_signalled
from notifier.delivery import Deliverer
from notifier.dispatching import Dispatcher
from notifier.metrics import NotifierMetrics
from notifier.publishing import FailurePublisher
from notifier.ratelimit import RateLimits
from notifier.sending import Sender
from notifier.templating import Templates
from notifier.tokens import StatusTokens
from schemas import GitopsConfig, Topics

log = logging.getLogger(__name__)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._notifier.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._notifier.assigned(set(assigned))


class Notifier(Member):
    """One member of the notifier consumer group, running in this event loop."""

    def __init__(
        self,
        config: GitopsConfig,
        *,
        notifier_id: str | None = None,
        http_port: int | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.notifier_id = notifier_id or default_member_id()
        self.topics = Topics(config.kafka.topic_prefix)
        self.metrics = NotifierMetrics()
        self.endpoints: OpsServer | None = None
        self._http_port = http_port
        self._consumer: AIOKafkaConsumer | None = None
        self._dispatcher: Dispatcher | None = None
        self._next: dict[TopicPartition, int] = {}
        self._joined = asyncio.Event()

    async def _build(self, stack: AsyncExitStack) -> None:
        settings, kafka = self.config.notifier, self.config.kafka
        session = await stack.enter_async_context(aiohttp.ClientSession())
        timeout = settings.request_timeout.total_seconds()
        credentials = await stack.enter_async_context(
            HostCredentials(InstallationTokens(timeout=timeout))
        )
        producer = await start_producer(kafka)
        stack.push_async_callback(producer.stop)
        source = f"/gitops/notifier/{self.notifier_id}"
        sender = Sender(
            config=self.config,
            deliverer=Deliverer(session, settings, RateLimits(settings.rate_limits), self.metrics),
            templates=Templates(),
            publisher=FailurePublisher(producer, self.topics, source=source),
            metrics=self.metrics,
            tokens=StatusTokens(self.config, credentials),
        )
        group = Group(
            "notifier", settings.group_id, settings.session_timeout, settings.heartbeat_interval
        )
        consumer = group_consumer(
            kafka,
            group,
            client_id=f"{kafka.client_id}-{self.notifier_id}",
            offset_reset="latest",
            assignors=[RangePartitionAssignor],
        )
        self._dispatcher = Dispatcher(
            consumer,
            topics=self.topics,
            rules=self.config.notifications,
            send=sender.send,
            superseded=sender.superseded,
        )
        self._consumer = consumer
        consumer.subscribe(
            [self.topics.sync_events, self.topics.sync_requests], listener=_Listener(self)
        )
        await join(consumer, kafka, group)
        stack.push_async_callback(consumer.stop)
        stack.push_async_callback(self._dispatcher.close)
        if self._http_port is not None:
            self.endpoints = await stack.enter_async_context(
                OpsServer(self.metrics, self.readiness, name="notifier", port=self._http_port)
            )
        self._loop_task = asyncio.create_task(
            self._poll(), name=f"notifier-poll-{self.notifier_id}"
        )
        log.info(
            "notifier %s joining group %s with %d rule(s)",
            self.notifier_id,
            settings.group_id,
            len(self.config.notifications),
        )

    async def assigned(self, tps: set[TopicPartition]) -> None:
        """Pin where each partition starts, so that start survives a move to another member."""
        assert self._consumer is not None and self._dispatcher is not None  # noqa: S101
        offsets = {}
        for tp in tps:
            position = await self._consumer.position(tp)
            self._next[tp] = position
            self._dispatcher.assigned(tp, position)
            offsets[tp] = OffsetAndMetadata(position, "")
        if offsets:
            with contextlib.suppress(KafkaError):
                await self._consumer.commit(offsets)
        log.info("partitions assigned: %s", sorted(f"{tp.topic}:{tp.partition}" for tp in tps))
        self._joined.set()

    async def revoked(self, tps: set[TopicPartition]) -> None:
        if tps and self._dispatcher is not None:
            await self._dispatcher.revoke(tps)
        for tp in tps:
            self._next.pop(tp, None)

    def _caught_up(self, tp: TopicPartition) -> bool:
        assert self._consumer is not None  # noqa: S101
        highwater = self._consumer.highwater(tp)
        position = self._next.get(tp)
        return highwater is not None and position is not None and position >= highwater

    async def _poll(self) -> None:
        assert self._consumer is not None and self._dispatcher is not None  # noqa: S101
        while not self._stopping.is_set():
            batch = await self._consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for record in records:
                    self._dispatcher.submit(tp, record.offset, record.value)
                    self._next[tp] = record.offset + 1
            await self._dispatcher.tick(self._caught_up)

    def readiness(self) -> tuple[bool, str]:
        task = self._loop_task
        if task is None or task.done() or self._stopping.is_set():
            return False, "not consuming"
        if not self._joined.is_set():
            return False, f"joining consumer group {self.config.notifier.group_id}"
        return True, f"member of {self.config.notifier.group_id}"

    async def joined(self, timeout: float = 60.0) -> None:
        """Until the first assignment (tests publish only once the member reads)."""
        await asyncio.wait_for(self._joined.wait(), timeout)


async def run_notifier(
    config: GitopsConfig, *, notifier_id: str | None = None, http_port: int | None = None
) -> None:
    """Run one notifier until SIGTERM/SIGINT, then leave the group and close cleanly."""
    notifier = Notifier(config, notifier_id=notifier_id, http_port=http_port)
    await run_until_signalled(notifier, name="notifier")
