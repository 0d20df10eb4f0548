"""A topic one syncer reads on its own: no consumer group, every partition, in a task.

Three parts of the syncer follow a topic this way. The app catalog (`syncer.catalog`)
and the status view (`syncer.appstatus`) read a compacted topic from its beginning, so
start-up costs about one record per key, then keep following it; the app-set generator
(`syncer.generator`) reads pushes from the moment it starts. Without a group there are no
commits and no rebalances: every member sees every record.

`TopicReader` is the one place such a consumer is opened (its partitions found, assigned
and positioned), read in a background task, said to be read to its end, and stopped
whatever state aiokafka's fetcher is in. Each part says only what a record does to its
state and what its start waits for (`opened()`, `loaded()`, `caught_up()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from syncer.background import Background

METADATA_POLL = 0.2
"""Seconds between looks for a topic's partitions while it is not (yet) known."""


class TopicReader(Background):
    """Reads `topic` from its beginning (`from_start`) or from now; `take()` each record.

    `start()` returns once the consumer is connected; finding the partitions and reading
    happen in the task, so a part that must know its topic before it serves awaits
    `opened()` (or `loaded()`, `caught_up()`) itself.
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        client_id: str,
        from_start: bool,
        metadata_timeout: float,
        poll_ms: int = 500,
    ) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._from_start = from_start
        self._metadata_timeout = metadata_timeout
        self._poll_ms = poll_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._ends: dict[TopicPartition, int] = {}
        self._opened = asyncio.Event()
        self._loaded = asyncio.Event()

    def take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Fold one record into the reader's state (called on the event loop, in order)."""
        raise NotImplementedError

    def on_loaded(self) -> None:
        """Called once, when every record that was there when reading began has been read."""

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if self._from_start else "latest",
            # Readers' users wait on what they read (a definition before its request, a
            # dependency's status): a record must not sit out a half-second long-poll.
            fetch_max_wait_ms=50,
        )
        self._consumer = consumer
        try:
            await consumer.start()
        except BaseException:
            await self.stop()
            raise
        await super().start()

    async def stop(self) -> None:
        """Stop reading and close the consumer; safe to call twice."""
        await super().stop()
        self._opened.clear()
        self._loaded.clear()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_reader(consumer)

    # ------------------------------------------------------------------ what to wait for
    async def opened(self) -> list[TopicPartition]:
        """Until reading began: the partitions read (none when the topic was not found
        within `metadata_timeout`). Raises what ended the reading task before that."""
        task = self._task
        if task is None:
            raise RuntimeError(f"the reader of {self.topic} is not started")
        if not self._opened.is_set():
            waiter = asyncio.ensure_future(self._opened.wait())
            try:
                await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
        if not self._opened.is_set():
            task.result()
            raise RuntimeError(f"reading {self.topic} ended before it began")
        return list(self._partitions)

    def is_loaded(self) -> bool:
        return self._loaded.is_set()

    async def loaded(self) -> None:
        """Until every record that was in the topic when reading began has been read."""
        await self._loaded.wait()

    async def caught_up(self, timeout: float = 10.0) -> bool:
        """Wait until everything published so far was read; False when `timeout` passed."""
        consumer = self._consumer
        if consumer is None:
            return False
        deadline = time.monotonic() + timeout
        try:
            ends = await consumer.end_offsets(self._partitions)
            while time.monotonic() < deadline:
                positions = [await consumer.position(tp) for tp in self._partitions]
                if all(
                    pos >= ends[tp] for pos, tp in zip(positions, self._partitions, strict=True)
                ):
                    return True
                await asyncio.sleep(0.02)
        except KafkaError as exc:
            self.log.warning("cannot tell whether %s is read to its end: %s", self.topic, exc)
        return False

    # ------------------------------------------------------------------ the task
    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None  # noqa: S101 - started before the task
        await self._open(consumer)
        if not self._partitions:
            self._loaded.set()
            self.on_loaded()
            return
        while True:
            if not self._loaded.is_set() and all(
                self._positions[tp] >= self._ends[tp] for tp in self._partitions
            ):
                self._loaded.set()
                self.on_loaded()
            batch = await consumer.getmany(timeout_ms=self._poll_ms)
            for tp, records in batch.items():
                for record in records:
                    self._positions[tp] = record.offset + 1
                    self.take(record)

    async def _open(self, consumer: AIOKafkaConsumer) -> None:
        """Find, assign and position the partitions; `opened()` returns after this."""
        partitions = await self._find_partitions(consumer)
        if partitions:
            consumer.assign(partitions)
            if self._from_start:
                await consumer.seek_to_beginning(*partitions)
            else:
                await consumer.seek_to_end(*partitions)
            # Resolved now, so that a record published once `opened()` returned is read.
            self._positions = {tp: await consumer.position(tp) for tp in partitions}
            self._ends = (
                await consumer.end_offsets(partitions)
                if self._from_start
                else dict(self._positions)
            )
        self._partitions = partitions
        self._opened.set()

    async def _find_partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        deadline = time.monotonic() + self._metadata_timeout
        while True:
            with contextlib.suppress(KafkaError):
                await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(self.topic)
            if found or time.monotonic() >= deadline:
                return [TopicPartition(self.topic, p) for p in sorted(found or ())]
            await asyncio.sleep(METADATA_POLL)


async def stop_reader(consumer: AIOKafkaConsumer) -> None:
    """Stop a group-less consumer, whatever state its fetcher is in.

    aiokafka's fetcher, closed while it sleeps out a retry after a timed-out fetch (a
    broker under load), lets that sleep's own cancellation out of `stop()`; only a
    cancellation of the caller itself is passed on.
    """
    try:
        await consumer.stop()
    except (KafkaError, OSError):
        pass
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
