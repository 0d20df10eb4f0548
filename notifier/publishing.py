"""Give-ups become `gitops.notification.failed` events on `<prefix>.sync-events`, keyed by app.

Publishing is retried until the broker takes it (or the work is cancelled by a rebalance
or shutdown): a give-up that left no event would be a notification lost without a trace.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas import Topics
from schemas.events import NotificationFailed, NotificationFailedData

log = logging.getLogger(__name__)


class FailurePublisher:
    def __init__(self, producer: AIOKafkaProducer, topics: Topics, *, source: str) -> None:
        self._producer = producer
        self._topics = topics
        self.source = source

    async def publish(self, data: NotificationFailedData, *, max_wait: float = 30.0) -> None:
        event = NotificationFailed(source=self.source, subject=data.app, data=data)
        delay = 0.5
        while True:
            try:
                await self._producer.send_and_wait(
                    self._topics.sync_events, event.to_bytes(), key=data.app.encode()
                )
                return
            except KafkaError as exc:
                log.warning("cannot publish gitops.notification.failed yet: %s", exc)
                await asyncio.sleep(delay)
                delay = min(max_wait, delay * 2)
