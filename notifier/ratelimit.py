"""Per-provider rate limits: a token bucket each, shared by every rule of one notifier.

Chat APIs limit how often one webhook may post (Slack documents one message per second
per incoming webhook, with short bursts allowed) and answer 429 above it; pacing our own
requests avoids spending retries on refusals. Commit-status APIs allow far more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

DEFAULT_RATES = {
    "github": 10.0,
    "gitlab": 10.0,
    "gitea": 10.0,
    "bitbucket": 10.0,
    "slack": 1.0,
    "msteams": 4.0,
    "webhook": 50.0,
}
"""Requests per second when `notifier.rate_limits` does not name the provider."""


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; `take()` waits for one."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1.0:
                await asyncio.sleep((1.0 - self._tokens) / self.rate)
                self._stamp = time.monotonic()
                self._tokens = 1.0
            self._tokens -= 1.0


class RateLimits:
    def __init__(self, rates: Mapping[Any, float]) -> None:
        self._buckets = {
            provider: TokenBucket(rates.get(provider, default))
            for provider, default in DEFAULT_RATES.items()
        }

    async def take(self, provider: str) -> None:
        await self._buckets[provider].take()
