"""The syncer's one retry policy: which layer retries what, how long it waits, and when it stops.

A failing request could once be retried by three layers (the transport, the Kubernetes
client, the worker re-running the whole sync): up to nine attempts of `api_timeout` each.
Now each cause has one owner:

- one API request that met a 429, a 5xx, a timeout or a lost connection is retried by
  `RetryPolicy.request`, at the Kubernetes layer, with exponential backoff and never
  sooner than the `Retry-After` the server sent (max-requests-inflight and
  priority-and-fairness rejections carry one);
- a whole sync is re-run only for causes at the sync's level, raised as
  `TransientSyncError`: the git server unreachable, a CRD not yet established, a
  resourceVersion race;
- both stop once the sync's time budget (`syncer.sync_timeout`) is spent, so a sync ends
  with an outcome in bounded time instead of queueing retries behind retries.

The transport's resend of a request on a pooled connection that the server had closed
while idle is not a retry: that request never reached the server.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
)

from schemas.config import SyncerSettings
from syncer.errors import RetriesExhausted, TransientSyncError

T = TypeVar("T")


class RetryableAnswer(Exception):
    """One request failed in a way the same request may not fail again (429, 5xx, I/O)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """Built once per process from `syncer` settings and handed to every client and worker."""

    api_attempts: int = 5
    """Tries of one API request, the first included."""
    api_first_delay: float = 0.2
    api_max_delay: float = 5.0
    sync_attempts: int = 3
    """Runs of one whole sync for sync-level causes, the first included."""
    sync_max_delay: float = 30.0
    sync_budget: float = 600.0
    """Seconds one sync may spend, its retries included."""
    _deadline: ContextVar[float | None] = field(
        default_factory=lambda: ContextVar("sync_deadline", default=None), compare=False
    )

    @classmethod
    def from_settings(
        cls, settings: SyncerSettings, *, sync_max_delay: float = 30.0
    ) -> RetryPolicy:
        return cls(
            api_attempts=settings.api_attempts,
            sync_attempts=settings.max_attempts,
            sync_max_delay=sync_max_delay,
            sync_budget=settings.sync_timeout.total_seconds(),
        )

    @contextmanager
    def budget(self) -> Iterator[None]:
        """Start the sync's clock for every request made inside (tasks inherit it)."""
        token = self._deadline.set(time.monotonic() + self.sync_budget)
        try:
            yield
        finally:
            self._deadline.reset(token)

    def remaining(self) -> float | None:
        """Seconds left of the current sync's budget, or None outside a sync."""
        deadline = self._deadline.get()
        return None if deadline is None else deadline - time.monotonic()

    def timeout(self, request_timeout: float) -> float:
        """One request's timeout: `api_timeout`, or less when the budget ends sooner."""
        remaining = self.remaining()
        if remaining is None:
            return request_timeout
        return max(0.05, min(request_timeout, remaining))

    async def request(self, send: Callable[[], Awaitable[T]], describe: str) -> T:
        """`send()`, retried on `RetryableAnswer`; `RetriesExhausted` once retrying is over."""
        tries = 1
        while True:
            try:
                return await send()
            except RetryableAnswer as exc:
                wait = self._request_wait(tries, exc)
                if wait is None:
                    raise self._exhausted(describe, exc, tries) from None
            await asyncio.sleep(wait)
            tries += 1

    def syncs(self) -> AsyncRetrying:
        """The worker's loop: whole re-runs for `TransientSyncError`, within the budget."""
        return AsyncRetrying(
            stop=self._stop_sync,
            wait=self._sync_wait,
            retry=retry_if_exception_type(TransientSyncError),
            reraise=True,
        )

    def _backoff(self, attempt: int, exc: BaseException | None) -> float:
        # Jittered, so that the requests one overloaded server refused together do not all
        # come back in the same millisecond and meet the same limit again.
        base = min(self.api_max_delay, self.api_first_delay * 2.0 ** (attempt - 1))
        if isinstance(exc, RetryableAnswer) and exc.retry_after is not None:
            return exc.retry_after + random.uniform(0, base)  # noqa: S311 - not cryptographic
        return random.uniform(base / 2, base)  # noqa: S311 - not cryptographic

    def _request_wait(self, tries: int, exc: RetryableAnswer) -> float | None:
        """How long to wait before the next try, or None when retrying is over."""
        if tries >= self.api_attempts:
            return None
        wait = self._backoff(tries, exc)
        return wait if self._fits(wait) else None

    def _sync_wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        base = exc.delay if isinstance(exc, TransientSyncError) else 1.0
        return float(min(self.sync_max_delay, base * 2 ** (state.attempt_number - 1)))

    def _stop_sync(self, state: RetryCallState) -> bool:
        return state.attempt_number >= self.sync_attempts or not self._fits(self._sync_wait(state))

    def _fits(self, wait: float) -> bool:
        """Whether a wait of `wait` seconds ends before the current sync's budget does."""
        remaining = self.remaining()
        return remaining is None or wait < remaining

    def _exhausted(self, describe: str, exc: RetryableAnswer, tries: int) -> RetriesExhausted:
        why = (
            f"the sync's time budget (syncer.sync_timeout, {self.sync_budget:.0f}s) is spent"
            if tries < self.api_attempts
            else f"gave up after {tries} attempt{'s' if tries > 1 else ''} (syncer.api_attempts)"
        )
        return RetriesExhausted(f"{describe}: {exc.message}; {why}", attempts=tries)
