"""At most one publish per webhook delivery, across redeliveries and concurrent duplicates.

Git hosts redeliver on timeouts and let users press "redeliver"; both reuse the delivery
id. A delivery is recorded only after its messages were acknowledged, so a delivery that
was answered 503 is published when the host retries. While a publish is in flight its
task is shared: a duplicate arriving meanwhile waits for the same outcome instead of
publishing again, and a publish that outlives its HTTP request (the sender got 503) still
counts once it is acknowledged. Memory is bounded by the window and by `max_entries`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Generic, TypeVar

T = TypeVar("T")


class DeliveryLedger(Generic[T]):
    """Delivery ids seen within `window`, each with the outcome that was answered for it."""

    def __init__(
        self,
        window: timedelta,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window.total_seconds()
        self._max = max_entries
        self._clock = clock
        self._done: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._in_flight: dict[str, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._done)

    def recorded(self, key: str) -> T | None:
        """The outcome recorded for `key` within the window, if any."""
        self._expire()
        entry = self._done.get(key)
        return entry[1] if entry is not None else None

    async def once(self, key: str, publish: Callable[[], Awaitable[T]], *, timeout: float) -> T:
        """Run `publish` unless `key` already succeeded or is running; share its outcome.

        Raises `TimeoutError` when the outcome is not known within `timeout`; the publish
        keeps running and is recorded if it succeeds later.
        """
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.create_task(self._run(key, publish), name=f"publish {key}")
            task.add_done_callback(_retrieve)
            self._in_flight[key] = task
        async with asyncio.timeout(timeout):
            return await asyncio.shield(task)

    async def drain(self, timeout: float) -> None:
        """Wait for in-flight publishes (shutdown), then cancel what is left."""
        tasks = list(self._in_flight.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self, key: str, publish: Callable[[], Awaitable[T]]) -> T:
        try:
            outcome = await publish()
            self._expire()
            self._done[key] = (self._clock() + self._window, outcome)
            self._done.move_to_end(key)
            while len(self._done) > self._max:
                self._done.popitem(last=False)
            return outcome
        finally:
            self._in_flight.pop(key, None)

    def _expire(self) -> None:
        now = self._clock()
        # Entries are kept in insertion order and share one window, so the oldest expire first.
        while self._done:
            key, (expires, _) = next(iter(self._done.items()))
            if expires > now:
                break
            del self._done[key]


def _retrieve(task: asyncio.Task[T]) -> None:
    """Failures reach the waiting requests; one nobody waits for any more is not an error."""
    if not task.cancelled():
        task.exception()
