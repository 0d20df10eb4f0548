"""The apps one syncer serves: those configured, plus those its app sets generated.

Generated apps are defined by records on the compacted `<prefix>.generated-apps` topic,
keyed by app name and written only by the owner of the app's set (`syncer.generator`),
from one commit of the set's branch. Every syncer reads the whole topic, from the start,
without a consumer group, so every member serves the same apps whichever partitions it
holds, and a newcomer knows them all before it takes a request.

`apps` is the live mapping the rest of the syncer reads (the worker, the dispatcher, the
poller, the drift checker): configured apps never change; generated ones come and go as
the records arrive. It is only written here, from the consume loop on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from schemas import AppConfig, GitopsConfig, Topics
from schemas.appsets import DefinitionTable
from schemas.events import AppDefinitionData

log = logging.getLogger(__name__)


class CatalogError(Exception):
    """The generated-apps topic cannot be read (missing, or the broker does not answer)."""


class AppCatalog:
    """Configured plus generated apps, kept current from the generated-apps topic."""

    def __init__(
        self, config: GitopsConfig, *, client_id: str, start_timeout: float = 30.0
    ) -> None:
        self._bootstrap = config.kafka.bootstrap
        self._client_id = client_id
        self.topic = Topics(config.kafka.topic_prefix).generated_apps
        self._start_timeout = start_timeout
        self.configured: dict[str, AppConfig] = dict(config.apps)
        self.apps: dict[str, AppConfig] = dict(config.apps)
        """Every app served now: the configured ones and the generated ones."""
        self._table = DefinitionTable(config.apps)
        self.generated: dict[str, AppDefinitionData] = self._table.generated
        """Current definitions of the generated apps, by app name."""
        self.removed: dict[str, AppDefinitionData] = self._table.removed
        """Last definitions of apps whose set no longer generates them."""
        self.version = 0
        """Bumped on every change of `apps`; schedulers compare it to refresh their view."""
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def origin(self, app: str) -> str | None:
        """The app set that generated `app` (None for a configured or unknown app)."""
        found = self.generated.get(app) or self.removed.get(app)
        return found.app_set if found is not None else None

    async def start(self) -> None:
        """Read every definition there is, then keep reading in the background."""
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Requests wait on `caught_up`: a definition must not sit in the broker for the
            # default half second of a long-poll fetch.
            fetch_max_wait_ms=50,
        )
        self._consumer = consumer
        try:
            await consumer.start()
            self._partitions = await self._find_partitions(consumer)
            consumer.assign(self._partitions)
            await consumer.seek_to_beginning(*self._partitions)
        except KafkaError as exc:
            await self.stop()
            raise CatalogError(f"cannot read topic {self.topic}: {type(exc).__name__}") from exc
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._run(), name="syncer-catalog")
        self._task.add_done_callback(_log_unexpected_exit)
        if not await self.caught_up(self._start_timeout):
            await self.stop()
            raise CatalogError(f"topic {self.topic} not read to its end in {self._start_timeout}s")
        log.info("serving %d generated apps", len(self.generated))

    async def _find_partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        deadline = time.monotonic() + 5.0
        while True:
            await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(self.topic)
            if found:
                return [TopicPartition(self.topic, p) for p in sorted(found)]
            if time.monotonic() > deadline:
                raise CatalogError(
                    f"topic {self.topic} does not exist: create the topics first"
                    " (`gitops up` and the receiver's start-up do)"
                )
            await asyncio.sleep(0.2)

    async def caught_up(self, timeout: float = 10.0) -> bool:
        """Wait until everything published so far is applied; False when `timeout` passed.

        A definition its set's owner published (and the broker acknowledged) before it
        published a request is known here once this returns True.
        """
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
            log.warning("cannot tell whether %s is read to its end: %s", self.topic, exc)
        return False

    async def changed(self) -> None:
        """Return at the next change of `apps`."""
        await self._changed.wait()

    async def _run(self) -> None:
        assert self._consumer is not None  # noqa: S101 - started before the task
        while True:
            batch = await self._consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    self.apply(record)

    def apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """One record of the topic, folded in by the rules every reader shares."""
        if record.key is None or not self._table.apply(record.key, record.value):
            return
        name = record.key.decode("utf-8", "replace")
        definition = self.generated.get(name)
        if definition is not None:
            self.apps[name] = definition.settings
        else:
            self.apps.pop(name, None)
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

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


def _log_unexpected_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the app catalog stopped reading", exc_info=task.exception())
