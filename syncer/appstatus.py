"""Every app's status, as every syncer sees it: the compacted `<prefix>.app-status` topic.

The syncer that owns an app publishes its `gitops.app.status` (commit, ready, hold,
what it waits for) whenever an outcome changes it, keyed by the app, before the
request's offset is committed. Each syncer reads the whole topic (no consumer group, so
every member sees every partition) from the beginning, then follows it: compaction keeps
about one record per app, so start-up costs one read per app however long the trail of
sync events is. A dependency's readiness is read here; the records arriving are what
wakes the apps waiting for it (`syncer.lifecycle`), instead of a poll loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from schemas.events import AppStatus, AppStatusData
from syncer.catalog import stop_reader

log = logging.getLogger(__name__)

Listener = Callable[[AppStatusData], None]


class StatusView:
    """The latest status of every app; an async context manager with one reading task."""

    def __init__(
        self, bootstrap: str, topic: str, *, client_id: str, metadata_timeout: float = 10.0
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._client_id = client_id
        self._metadata_timeout = metadata_timeout
        self._statuses: dict[str, AppStatusData] = {}
        self._listeners: list[Listener] = []
        self._loaded = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    def get(self, app: str) -> AppStatusData | None:
        return self._statuses.get(app)

    def all(self) -> list[AppStatusData]:
        return list(self._statuses.values())

    def listen(self, listener: Listener) -> None:
        """Call `listener` with every record read after the initial load."""
        self._listeners.append(listener)

    def is_loaded(self) -> bool:
        return self._loaded.is_set()

    async def loaded(self) -> None:
        """Until every record that was in the topic at start-up has been read."""
        await self._loaded.wait()

    async def start(self) -> None:
        if self._consumer is not None:
            return
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(self._consumer), name="syncer-app-status")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("reading %s stopped", self._topic, exc_info=task.exception())

    async def stop(self) -> None:
        """Stop reading; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_reader(consumer)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        partitions = await self._partitions(consumer)
        if not partitions:
            log.warning("topic %s not found: no app statuses to read", self._topic)
            self._loaded.set()
            return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        positions = dict.fromkeys(partitions, 0)
        while True:
            if not self._loaded.is_set() and all(positions[tp] >= ends[tp] for tp in partitions):
                self._loaded.set()
                log.info("read %d app statuses from %s", len(self._statuses), self._topic)
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for record in records:
                    positions[tp] = record.offset + 1
                    self._take(record.value)

    def _take(self, value: bytes | None) -> None:
        try:
            status = AppStatus.model_validate_json(value or b"").data
        except ValidationError as exc:
            log.warning("ignoring malformed record on %s: %s", self._topic, exc)
            return
        self._statuses[status.app] = status
        if self._loaded.is_set():
            for listener in self._listeners:
                listener(status)

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        deadline = time.monotonic() + self._metadata_timeout
        while True:
            with contextlib.suppress(KafkaError):
                await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(self._topic)
            if found or time.monotonic() >= deadline:
                return [TopicPartition(self._topic, p) for p in sorted(found or ())]
            await asyncio.sleep(0.2)
