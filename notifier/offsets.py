"""Offsets of one topic-partition: which records are still being notified about.

Records of a partition arrive in offset order but finish out of order (apps sharing a
partition, slow and fast providers), so the offset to commit is that of the oldest record
not yet done, or the next one to read when all are: at-least-once, never past a record
whose notification is still on its way.
"""

from __future__ import annotations

from collections import deque


class PartitionLog:
    def __init__(self) -> None:
        self._window: deque[int] = deque()
        self._done: set[int] = set()
        self._next: int | None = None

    def add(self, offset: int) -> None:
        self._window.append(offset)
        self._next = offset + 1

    def start_at(self, offset: int) -> None:
        """Where reading starts when no record came yet (a partition just assigned)."""
        if self._next is None:
            self._next = offset

    def finish(self, offset: int) -> None:
        self._done.add(offset)
        while self._window and self._window[0] in self._done:
            self._done.discard(self._window.popleft())

    def commit_point(self) -> int | None:
        """The offset to commit: the oldest unfinished record's, else the next to read."""
        return self._window[0] if self._window else self._next
