"""Per-source request limits: a fixed one-minute window per client address.

A misbehaving sender (a loop of redeliveries, a scanner) should not crowd out the Git
hosts we serve; above the limit it gets 429 with Retry-After until its window ends.
Memory stays bounded: old windows are dropped, and at most `max_sources` are tracked.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """Allow `per_minute` requests per source in each one-minute window."""

    def __init__(
        self,
        per_minute: int,
        *,
        max_sources: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = per_minute
        self._max = max_sources
        self._clock = clock
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def retry_after(self, source: str) -> int | None:
        """Count one request; None when allowed, else seconds until the window ends."""
        now = self._clock()
        start, count = self._windows.get(source, (now, 0))
        if now - start >= 60.0:
            start, count = now, 0
        if count >= self._limit:
            return max(1, math.ceil(60.0 - (now - start)))
        self._windows[source] = (start, count + 1)
        self._windows.move_to_end(source)
        while len(self._windows) > self._max:
            self._windows.popitem(last=False)
        return None
