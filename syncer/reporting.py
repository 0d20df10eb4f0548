"""Report: build the one outcome event each request gets, and publish it keyed by app.

Every event carries the request's id, commit, cluster, reason and delivery id, so a user
watching `<prefix>.sync-events` can tie an outcome to the push that caused it. Requests
that kept failing also go to `<prefix>.sync-requests.dlq` with the last error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aiokafka import AIOKafkaProducer

from schemas import Topics
from schemas.events import (
    DeadLetter,
    Health,
    ObjectResult,
    SyncFailed,
    SyncRequested,
    SyncResultData,
    SyncSkipped,
    SyncSucceeded,
)
from schemas.types import CommitSha
from syncer.metrics import SyncerMetrics

OutcomeKind = Literal["succeeded", "failed", "skipped"]


@dataclass
class Outcome:
    """The final word on one request, before it is published."""

    request: SyncRequested
    kind: OutcomeKind
    cluster: str
    commit: CommitSha | None = None
    objects: list[ObjectResult] = field(default_factory=list)
    health: Health | None = None
    duration_ms: int = 0
    error: str | None = None
    dead_letter: tuple[str, int] | None = None
    """(last error, attempts) when the request also goes to the dead-letter topic."""

    def event(self, source: str) -> SyncSucceeded | SyncFailed | SyncSkipped:
        data = SyncResultData(
            app=self.request.data.app,
            cluster=self.cluster,
            commit=self.commit or self.request.data.commit,
            reason=self.request.data.reason,
            delivery_id=self.request.data.delivery_id,
            request_id=self.request.id,
            objects=self.objects,
            health=self.health,
            duration_ms=self.duration_ms,
            error=self.error,
        )
        subject = self.request.data.app
        if self.kind == "succeeded":
            return SyncSucceeded(source=source, subject=subject, data=data)
        if self.kind == "failed":
            return SyncFailed(source=source, subject=subject, data=data)
        return SyncSkipped(source=source, subject=subject, data=data)


class Reporter:
    """Publishes outcomes with an already started producer (owned by the composition root)."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topics: Topics,
        *,
        source: str,
        metrics: SyncerMetrics | None = None,
    ) -> None:
        self._producer = producer
        self._topics = topics
        self.source = source
        self._metrics = metrics

    async def publish(self, outcome: Outcome) -> None:
        """Dead letter first (if any), then the outcome event; returns once both are acked."""
        key = outcome.request.data.app.encode()
        if outcome.dead_letter is not None:
            error, attempts = outcome.dead_letter
            letter = DeadLetter(
                **outcome.request.model_dump(exclude={"type"}),
                dlqerror=error,
                dlqattempts=attempts,
            )
            await self._producer.send_and_wait(
                self._topics.dead_letters, letter.to_bytes(), key=key
            )
        event = outcome.event(self.source)
        await self._producer.send_and_wait(self._topics.sync_events, event.to_bytes(), key=key)
        if self._metrics is not None:
            self._metrics.outcome(
                outcome.request.data.app,
                outcome.kind,
                outcome.duration_ms / 1000,
                outcome.objects,
                dlq=outcome.dead_letter is not None,
            )
