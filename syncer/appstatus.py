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

import logging
from collections.abc import Callable

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from schemas.events import AppStatus, AppStatusData
from syncer.topicreader import TopicReader

log = logging.getLogger(__name__)

Listener = Callable[[AppStatusData], None]


class StatusView(TopicReader):
    """The latest status of every app; an async context manager with one reading task."""

    task_name = "syncer-app-status"
    failure = "reading the app-status topic stopped"

    def __init__(
        self, bootstrap: str, topic: str, *, client_id: str, metadata_timeout: float = 10.0
    ) -> None:
        super().__init__(
            bootstrap=bootstrap,
            topic=topic,
            client_id=client_id,
            from_start=True,
            metadata_timeout=metadata_timeout,
            poll_ms=200,
        )
        self._statuses: dict[str, AppStatusData] = {}
        self._listeners: list[Listener] = []

    def get(self, app: str) -> AppStatusData | None:
        return self._statuses.get(app)

    def all(self) -> list[AppStatusData]:
        return list(self._statuses.values())

    def listen(self, listener: Listener) -> None:
        """Call `listener` with every record read after the initial load."""
        self._listeners.append(listener)

    def on_loaded(self) -> None:
        if self._partitions:
            log.info("read %d app statuses from %s", len(self._statuses), self.topic)
        else:
            log.warning("topic %s not found: no app statuses to read", self.topic)

    def take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            status = AppStatus.model_validate_json(record.value or b"").data
        except ValidationError as exc:
            log.warning("ignoring malformed record on %s: %s", self.topic, exc)
            return
        self._statuses[status.app] = status
        if self.is_loaded():
            for listener in self._listeners:
                listener(status)
