"""Which apps this syncer owns: those whose key lands on a partition it is assigned.

Requests for an app are keyed by the app name, so the producer's partitioner puts all
of them on one partition of `<prefix>.sync-requests`, and the consumer group gives that
partition to exactly one syncer. Periodic work (branch-head polls, drift checks) follows
the same rule, so with N syncers every app is checked by exactly one of them and the
checks move with the partitions on a rebalance. The hash must be the producer's own
(aiokafka's `DefaultPartitioner`, murmur2 like Java's client), or a syncer would poll
apps whose requests another syncer handles.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka.partitioner import murmur2


def partition_of(key: str, partitions: int) -> int:
    """The partition the default partitioner picks for `key` among `partitions`."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, got {partitions}")
    return (int(murmur2(key.encode("utf-8"))) & 0x7FFFFFFF) % partitions


class Ownership:
    """The partitions of one topic that this member holds right now, and who they make us own.

    The consumer's rebalance listener calls `assigned()` and `revoked()`; schedulers ask
    `owns(key)` and wait on `changed()` to move their schedules at once.
    """

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._partitions: frozenset[int] = frozenset()
        self._total = 0
        self._generation = 0
        self._changed = asyncio.Event()

    @property
    def partitions(self) -> frozenset[int]:
        return self._partitions

    @property
    def total(self) -> int:
        """Partitions of the topic (0 until the first assignment)."""
        return self._total

    @property
    def generation(self) -> int:
        """Bumped on every change; lets a scheduler tell whether its view is stale."""
        return self._generation

    def assigned(self, partitions: Iterable[int], total: int) -> None:
        """The whole new assignment of `topic` (aiokafka's eager protocol hands over all)."""
        self._set(frozenset(partitions), total)

    def assigned_from(self, assignment: Iterable[Any], consumer: Any) -> None:
        """Take the new assignment from an aiokafka rebalance listener's `assigned` set.

        Only the assignment is followed, not revocations: with aiokafka's eager protocol a
        revoke of everything precedes every assignment, and clearing in between would
        restart the schedules of partitions we keep.
        """
        partitions = {tp.partition for tp in assignment if tp.topic == self.topic}
        known = consumer.partitions_for_topic(self.topic) or ()
        total = max(len(known), max(partitions, default=-1) + 1)
        self.assigned(partitions, total)

    def revoked(self) -> None:
        """Everything is taken away until the next assignment (start of a rebalance)."""
        self._set(frozenset(), self._total)

    def _set(self, partitions: frozenset[int], total: int) -> None:
        if total < 0 or any(p < 0 or p >= max(total, 1) for p in partitions):
            raise ValueError(f"partitions {sorted(partitions)} do not fit a topic of {total}")
        if partitions == self._partitions and total == self._total:
            return
        self._partitions, self._total = partitions, total
        self._generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def owns(self, key: str) -> bool:
        if not self._partitions or self._total < 1:
            return False
        return partition_of(key, self._total) in self._partitions

    def owned(self, keys: Iterable[str]) -> list[str]:
        return [key for key in keys if self.owns(key)]

    async def changed(self) -> None:
        """Return at the next change of the assignment."""
        await self._changed.wait()
