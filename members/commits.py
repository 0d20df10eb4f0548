"""Offsets committed only as far as a partition's records were fully handled.

Records of a partition arrive in offset order but finish out of order (apps sharing a
partition, slow and fast notification providers), so the offset to commit is that of
the oldest record not yet finished, or the next one to read once all are: at-least-once,
never past a record still being handled. A commit the broker refuses is not retried on
its own; the partition's next commit carries it.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)


class PartitionOffsets:
    """In-flight offsets of one partition; the commit point is the lowest unfinished one."""

    def __init__(self) -> None:
        self._running: list[int] = []
        self._finished: set[int] = set()
        self._next: int | None = None

    def add(self, offset: int) -> None:
        heapq.heappush(self._running, offset)
        self._next = offset + 1 if self._next is None else max(self._next, offset + 1)

    def start_at(self, offset: int) -> None:
        """Where reading starts when no record came yet (a partition just assigned)."""
        if self._next is None:
            self._next = offset

    def finish(self, offset: int) -> None:
        self._finished.add(offset)
        while self._running and self._running[0] in self._finished:
            self._finished.discard(heapq.heappop(self._running))

    def commit_point(self) -> int | None:
        """The offset to commit (the next to read), or None when nothing was seen."""
        return self._running[0] if self._running else self._next


class Commits:
    """The offsets of every partition a member handles, and how far each is committed."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self._offsets: dict[TopicPartition, PartitionOffsets] = {}
        self._committed: dict[TopicPartition, int] = {}

    def track(self, tp: TopicPartition) -> PartitionOffsets:
        """The offsets of `tp`, tracked from now on if they were not."""
        return self._offsets.setdefault(tp, PartitionOffsets())

    def get(self, tp: TopicPartition) -> PartitionOffsets | None:
        """The offsets of `tp`; None when it is not (or no longer) this member's."""
        return self._offsets.get(tp)

    def __contains__(self, tp: object) -> bool:
        return tp in self._offsets

    def partitions(self) -> list[TopicPartition]:
        return list(self._offsets)

    def committed(self, tp: TopicPartition) -> int:
        """The offset last committed for `tp` (the next to read), -1 before any."""
        return self._committed.get(tp, -1)

    async def commit(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Commit `tps` (every tracked partition by default) as far as they are finished."""
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp in self.partitions() if tps is None else tps:
            tracker = self._offsets.get(tp)
            point = tracker.commit_point() if tracker else None
            if point is not None and point > self.committed(tp):
                offsets[tp] = OffsetAndMetadata(point, "")
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("offset commit failed (later commits retry it): %s", exc)
            return
        for tp, meta in offsets.items():
            self._committed[tp] = max(self.committed(tp), meta.offset)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Drop the offsets of partitions handed to another member."""
        for tp in tps:
            self._offsets.pop(tp, None)
            self._committed.pop(tp, None)
