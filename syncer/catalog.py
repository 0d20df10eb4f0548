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
import logging

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError

from schemas import AppConfig, GitopsConfig, Topics
from schemas.appsets import DefinitionTable
from schemas.events import AppDefinitionData
from syncer.topicreader import TopicReader

log = logging.getLogger(__name__)

TOPIC_WAIT = 5.0
"""Seconds start-up looks for the generated-apps topic before calling it missing."""


class CatalogError(Exception):
    """The generated-apps topic cannot be read (missing, or the broker does not answer)."""


class AppCatalog(TopicReader):
    """Configured plus generated apps, kept current from the generated-apps topic.

    A definition its set's owner published (and the broker acknowledged) before it
    published a request is known here once `caught_up()` returns True.
    """

    task_name = "syncer-catalog"
    failure = "the app catalog stopped reading"

    def __init__(
        self, config: GitopsConfig, *, client_id: str, start_timeout: float = 30.0
    ) -> None:
        super().__init__(
            bootstrap=config.kafka.bootstrap,
            topic=Topics(config.kafka.topic_prefix).generated_apps,
            client_id=client_id,
            from_start=True,
            metadata_timeout=TOPIC_WAIT,
        )
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
        self._changed = asyncio.Event()

    def origin(self, app: str) -> str | None:
        """The app set that generated `app` (None for a configured or unknown app)."""
        found = self.generated.get(app) or self.removed.get(app)
        return found.app_set if found is not None else None

    async def start(self) -> None:
        """Read every definition there is, then keep reading in the background."""
        if self.running:
            return
        try:
            await super().start()
            partitions = await self.opened()
        except KafkaError as exc:
            await self.stop()
            raise CatalogError(f"cannot read topic {self.topic}: {type(exc).__name__}") from exc
        except BaseException:
            await self.stop()
            raise
        if not partitions:
            await self.stop()
            raise CatalogError(
                f"topic {self.topic} does not exist: create the topics first"
                " (`gitops up` and the receiver's start-up do)"
            )
        if not await self.caught_up(self._start_timeout):
            await self.stop()
            raise CatalogError(f"topic {self.topic} not read to its end in {self._start_timeout}s")
        log.info("serving %d generated apps", len(self.generated))

    async def changed(self) -> None:
        """Return at the next change of `apps`."""
        await self._changed.wait()

    def take(self, record: ConsumerRecord[bytes, bytes]) -> None:
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
