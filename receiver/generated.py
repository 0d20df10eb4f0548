"""The apps app sets generated, as the syncers publish them: the receiver never reads Git.

The owner of each app set writes the current definition of every app it generated to
the compacted `<prefix>.generated-apps` topic, keyed by app name. The receiver reads the
whole topic from its start (no consumer group) into its `Registry`, so a push is matched
to generated apps by path exactly as to configured ones. A push that adds a directory
matches no app yet: the set's owner reads that push from `<prefix>.push-events` and
creates the app itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from receiver.matching import Registry
from schemas.appsets import DefinitionTable
from schemas.config import KafkaSettings
from schemas.topics import Topics

log = logging.getLogger("receiver.generated")


class GeneratedApps:
    """Keeps a `Registry` following the generated apps; `start()` reads all there is."""

    def __init__(
        self,
        settings: KafkaSettings,
        registry: Registry,
        *,
        configured: Iterable[str],
        timeout: float = 30.0,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._table = DefinitionTable(configured)
        self._topic = Topics(settings.topic_prefix).generated_apps
        self._timeout = timeout
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin reading in the background; returns once the topic was read to its end
        (or after `timeout`, logged: pushes then match what was read so far)."""
        if self._task is not None:
            return
        loaded = asyncio.Event()
        self._task = asyncio.create_task(self._run(loaded), name="receiver-generated-apps")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await loaded.wait()
        if not loaded.is_set():
            log.warning("generated apps not read to the end yet", extra={"topic": self._topic})

    async def _run(self, loaded: asyncio.Event) -> None:
        backoff = 0.2
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._settings.bootstrap,
                client_id=f"{self._settings.client_id}-receiver-apps",
                enable_auto_commit=False,
                fetch_max_wait_ms=50,
            )
            try:
                self._consumer = consumer
                await consumer.start()
                await self._read(consumer, loaded)
            except (KafkaError, OSError) as exc:
                log.warning("cannot read generated apps, retrying", extra={"error": str(exc)})
            finally:
                self._consumer = None
                with contextlib.suppress(KafkaError, OSError):
                    await consumer.stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _read(self, consumer: AIOKafkaConsumer, loaded: asyncio.Event) -> None:
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(self._topic) or set()
        if not found:
            raise KafkaError(f"topic {self._topic} does not exist yet")
        partitions = [TopicPartition(self._topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        started = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    self._apply(record.key, record.value)
            if not loaded.is_set():
                positions = [await consumer.position(tp) for tp in partitions]
                if all(p >= ends[tp] for p, tp in zip(positions, partitions, strict=True)):
                    loaded.set()
                    log.info(
                        "generated apps read",
                        extra={"ms": round((time.monotonic() - started) * 1000)},
                    )

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or not self._table.apply(key, value):
            return
        name = key.decode("utf-8", "replace")
        definition = self._table.generated.get(name)
        if definition is not None:
            self._registry.follow(name, definition.settings)
        else:
            self._registry.unfollow(name)

    async def close(self) -> None:
        """Stop reading; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
