"""The event trail: every topic of the installation read from the start, then followed.

The dashboard joins no consumer group and commits nothing (DESIGN: "each `gitops ui`
reads without committing"), so it never takes partitions from syncers or notifiers and
any number of dashboards can run. Records are kept in a bounded ring (`ui.max_events`)
for the Events page, folded into the `Board`, and fanned out to the live pages; a page
whose queue overflows is dropped and its EventSource reconnects from the last id it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from dashboard.board import AppRow, Board
from dashboard.records import Record, parse_record
from schemas import KafkaSettings, Topics

log = logging.getLogger(__name__)
QUEUE_SIZE = 1000


class Subscription:
    """One live page's feed: records and the app rows they changed, in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[Record, list[AppRow]] | None] = asyncio.Queue(QUEUE_SIZE)

    async def __aiter__(self) -> AsyncIterator[tuple[Record, list[AppRow]]]:
        while (item := await self.queue.get()) is not None:
            yield item


class Trail:
    """Follows the topics in a background task; `async with Trail(...)` starts and stops it."""

    def __init__(self, kafka: KafkaSettings, board: Board, *, max_events: int) -> None:
        self._kafka = kafka
        self._topics = Topics(kafka.topic_prefix)
        self.board = board
        self._ring: deque[Record] = deque(maxlen=max_events)
        self._subscribers: set[Subscription] = set()
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self.caught_up = asyncio.Event()
        """Set once the history that was on the topics at start-up has been read."""
        self.connected = False
        self._resume: dict[TopicPartition, int] = {}
        """Next offset per partition, so a reconnect neither repeats nor skips records."""

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._follow(), name="dashboard-trail")
        self._task.add_done_callback(_report_exit)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in list(self._subscribers):
            self._drop(sub)

    # ------------------------------------------------------------------ reading

    def records(self, after: int = 0) -> list[Record]:
        """Kept records with `seq > after`, oldest first."""
        if after <= 0:
            return list(self._ring)
        return [r for r in self._ring if r.seq > after]

    def by_delivery(self, delivery_id: str) -> list[Record]:
        return [r for r in self._ring if r.delivery_id == delivery_id]

    @property
    def last_seq(self) -> int:
        return self._seq

    def subscribe(self) -> Subscription:
        sub = Subscription()
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def add(self, topic: str, raw: bytes | None, key: bytes | None = None) -> Record | None:
        """Take one message in: keep it, fold it into the board, tell the live pages."""
        defined = self.board.define(key, raw) if topic == self._topics.generated_apps else []
        record = parse_record(
            raw, topic=topic, seq=self._seq + 1, dead_letter=topic == self._topics.dead_letters
        )
        if record is None:
            return None
        self._seq = record.seq
        self._ring.append(record)
        changed = defined or self.board.apply(record)
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait((record, changed))
            except asyncio.QueueFull:
                self._drop(sub)
        return record

    def _drop(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)
        with contextlib.suppress(asyncio.QueueFull):
            sub.queue.put_nowait(None)

    # ------------------------------------------------------------------ following

    async def _follow(self) -> None:
        while True:
            try:
                await self._consume()
            except (KafkaError, OSError) as exc:
                self.connected = False
                log.warning(
                    "dashboard: reading %s failed, retrying: %s", self._kafka.bootstrap, exc
                )
                await asyncio.sleep(2.0)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap,
            client_id=f"{self._kafka.client_id}-ui",
            enable_auto_commit=False,
        )
        try:
            await consumer.start()  # inside: a start cancelled by a stop still closes it
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            positions = {tp: self._resume.get(tp) for tp in partitions}
            for tp, offset in positions.items():
                if offset is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, offset)
            ends = await consumer.end_offsets(partitions)
            self.connected = True
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                records = sorted(
                    (r for rs in batch.values() for r in rs), key=lambda r: (r.timestamp, r.offset)
                )
                for message in records:
                    self.add(message.topic, message.value, message.key)
                    self._resume[TopicPartition(message.topic, message.partition)] = (
                        message.offset + 1
                    )
                if not self.caught_up.is_set() and all(
                    self._resume.get(tp, 0) >= end for tp, end in ends.items()
                ):
                    self.caught_up.set()
        finally:
            await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """The topics' partitions, waiting (bounded per round) until the topics exist."""
        names = self._topics.all()
        while True:
            await consumer._client.force_metadata_update()
            found = _partitions_of(consumer, names)
            if any(tp.topic == self._topics.sync_events for tp in found):
                return found
            await asyncio.sleep(1.0)


def _partitions_of(consumer: AIOKafkaConsumer, names: Iterable[str]) -> list[TopicPartition]:
    return [
        TopicPartition(topic, p)
        for topic in names
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]


def _report_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("dashboard: the trail stopped", exc_info=task.exception())
