"""Delivery: send one request, retry what may pass later, give up on what cannot.

The one place aiohttp's errors and the providers' answers become `TransientDeliveryError`
or `PermanentDeliveryError`: 2xx is delivered; 429 and 5xx are transient (a 429's or
503's `Retry-After` sets the next wait); any other status is permanent (a 4xx means the
request itself is wrong: retrying cannot fix a bad token or an unknown repository);
timeouts and connection errors are transient. Attempts are bounded
(`notifier.max_attempts`) and spaced as the syncer spaces its retries: the error's own
delay when it has one, else `retry_delay` doubling each time, never more than `max_delay`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import TypeVar

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from notifier.errors import (
    DeliveryError,
    DeliveryGaveUp,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from notifier.metrics import NotifierMetrics
from notifier.providers import Outgoing
from notifier.ratelimit import RateLimits
from schemas.config import NotifierSettings

_ANSWER_EXCERPT = 200
T = TypeVar("T")


def retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _answer_class(status: int) -> str:
    if status == 429:
        return "429"
    return f"{status // 100}xx"


class Deliverer:
    """Sends `Outgoing` requests with a session the composition root owns."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: NotifierSettings,
        limits: RateLimits,
        metrics: NotifierMetrics,
    ) -> None:
        self._session = session
        self._settings = settings
        self._limits = limits
        self._metrics = metrics
        self._timeout = aiohttp.ClientTimeout(total=settings.request_timeout.total_seconds())

    async def deliver(self, provider: str, outgoing: Outgoing) -> int:
        """Attempts it took; raises `DeliveryGaveUp` with the last error when it gave up."""
        _, attempts = await self.retrying(lambda: self._attempt(provider, outgoing))
        return attempts

    async def retrying(self, step: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        """`step`'s result and the attempts it took, retried under the delivery policy
        (also what minting a token for a request goes through)."""
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._settings.max_attempts),
                wait=self._wait,
                retry=retry_if_exception_type(TransientDeliveryError),
                reraise=True,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    result = await step()
        except DeliveryError as exc:
            raise DeliveryGaveUp(exc, attempts) from None
        return result, attempts

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        ceiling = self._settings.max_delay.total_seconds()
        if isinstance(exc, TransientDeliveryError) and exc.delay is not None:
            return min(ceiling, exc.delay)
        first = self._settings.retry_delay.total_seconds()
        return float(min(ceiling, first * 2 ** (state.attempt_number - 1)))

    async def _attempt(self, provider: str, outgoing: Outgoing) -> None:
        await self._limits.take(provider)
        started = time.monotonic()
        try:
            async with self._session.request(
                outgoing.method,
                outgoing.url,
                data=outgoing.body,
                headers=outgoing.headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                answer = (await response.content.read(4096)).decode("utf-8", "replace")
                status = response.status
                header = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._metrics.attempts.labels(provider=provider, answer="network").inc()
            kind = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise TransientDeliveryError(f"{outgoing.where}: no answer ({kind})") from None
        finally:
            self._metrics.request_seconds.labels(provider=provider).observe(
                time.monotonic() - started
            )
        self._metrics.attempts.labels(provider=provider, answer=_answer_class(status)).inc()
        if 200 <= status < 300:
            return
        excerpt = " ".join(answer.split())[:_ANSWER_EXCERPT]
        message = f"{outgoing.where}: HTTP {status}" + (f": {excerpt}" if excerpt else "")
        if status == 429 or status >= 500:
            raise TransientDeliveryError(message, status=status, delay=retry_after(header))
        raise PermanentDeliveryError(message, status=status)
