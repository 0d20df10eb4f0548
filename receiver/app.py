"""The aiohttp application: routes, HTTP-level limits and the composition of the parts.

HTTP concerns live here and nowhere else: body size (checked against Content-Length
first, then enforced while reading), media type, per-source rate and concurrency
limits, and turning every outcome into a short JSON answer. An unexpected error is
logged with its delivery id and answered with a plain 500, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from receiver import encoding, health
from receiver.bitbucket import Bitbucket
from receiver.dedupe import DeliveryLedger
from receiver.deliveries import Answer, DeliveryHandler, Recorded, accepts
from receiver.generated import GeneratedApps
from receiver.gitea import Gitea
from receiver.github import GitHub
from receiver.gitlab import GitLab
from receiver.limits import RateLimiter
from receiver.matching import Registry
from receiver.metrics import ReceiverMetrics
from receiver.publishing import ProducerFactory, Publisher, default_producer
from receiver.pushes import WebhookProvider
from receiver.signatures import SecretBook
from schemas.config import GitopsConfig, ReceiverSettings
from schemas.topics import Topics

log = logging.getLogger("receiver")

_DELIVERY_HEADERS = (
    "X-GitHub-Delivery",
    "X-Gitlab-Event-UUID",
    "Idempotency-Key",
    "X-Gitea-Delivery",
    "X-Forgejo-Delivery",
    "X-Request-UUID",
)


@dataclass(frozen=True)
class ReceiverState:
    """Everything the request handlers share, built once per application."""

    settings: ReceiverSettings
    handler: DeliveryHandler
    publisher: Publisher
    ledger: DeliveryLedger[Recorded]
    metrics: ReceiverMetrics
    slots: asyncio.Semaphore
    limiter: RateLimiter | None
    drain_timeout: float


STATE = web.AppKey("receiver_state", ReceiverState)
GENERATED = web.AppKey("receiver_generated_apps", GeneratedApps)


def providers() -> list[WebhookProvider]:
    """The Git hosts served, each at `POST /hooks/<name>`."""
    return [GitHub(), GitLab(), Gitea(), Bitbucket()]


def build_app(
    config: GitopsConfig,
    *,
    producer_factory: ProducerFactory = default_producer,
    probe_interval: float = 1.0,
) -> web.Application:
    """The receiver application; its producer starts and stops with the app (cleanup_ctx)."""
    settings = config.receiver
    secrets = SecretBook.from_config(config)
    for name, repo in config.repositories.items():
        if not repo.webhook_secrets():
            log.warning(
                "repository has no webhook_secret: its webhooks will be refused",
                extra={"repository": name},
            )
    publish_timeout = config.kafka.request_timeout.total_seconds()
    publisher = Publisher(
        config.kafka, producer_factory=producer_factory, probe_interval=probe_interval
    )
    ledger: DeliveryLedger[Recorded] = DeliveryLedger(settings.dedupe_window)
    metrics = ReceiverMetrics()
    registry = Registry(config)
    handler = DeliveryHandler(
        secrets=secrets,
        registry=registry,
        publisher=publisher,
        ledger=ledger,
        metrics=metrics,
        topics=Topics(config.kafka.topic_prefix),
        publish_timeout=publish_timeout,
        retry_after=max(1, round(settings.retry_after.total_seconds())),
    )
    state = ReceiverState(
        settings=settings,
        handler=handler,
        publisher=publisher,
        ledger=ledger,
        metrics=metrics,
        slots=asyncio.Semaphore(settings.max_concurrent_requests),
        limiter=RateLimiter(settings.rate_limit_per_minute)
        if settings.rate_limit_per_minute
        else None,
        drain_timeout=3 * publish_timeout,
    )
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[STATE] = state
    app.cleanup_ctx.append(_producer_lifetime)
    if config.app_sets:
        app[GENERATED] = GeneratedApps(config.kafka, registry, configured=config.apps)
        app.cleanup_ctx.append(_generated_lifetime)
    app.add_routes([web.post(f"/hooks/{p.name}", _guarded(_hook(p))) for p in providers()])
    app.add_routes(
        [
            web.route(route.method, route.path, _guarded(route.handler))
            for route in health.routes(publisher, metrics)
            if isinstance(route, web.RouteDef)
        ]
    )
    return app


async def _producer_lifetime(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    await state.publisher.start()
    yield
    # Runs after the server stopped accepting and in-flight requests ended: let publishes
    # that outlived their request finish (so they are not lost), then flush and close.
    await state.ledger.drain(state.drain_timeout)
    await state.publisher.close()


async def _generated_lifetime(app: web.Application) -> AsyncIterator[None]:
    generated = app[GENERATED]
    await generated.start()
    yield
    await generated.close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _hook(provider: WebhookProvider) -> Handler:
    async def hook(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        started = time.perf_counter()
        answer = await _answer(state, provider, request)
        state.metrics.count_request(provider.name, answer.outcome)
        log.info(
            "webhook answered",
            extra={
                "provider": provider.name,
                "delivery": provider.delivery_id(request.headers),
                "status": answer.status,
                "outcome": answer.outcome,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after else None
        response = web.Response(
            body=encoding.dumps(answer.body),
            status=answer.status,
            headers=headers,
            content_type="application/json",
            charset="utf-8",
        )
        if answer.status == 408:
            response.force_close()  # the rest of an unread body must not be parsed as a request
        return response

    return hook


async def _answer(state: ReceiverState, provider: WebhookProvider, request: web.Request) -> Answer:
    if state.limiter is not None:
        wait = state.limiter.retry_after(request.remote or "unknown")
        if wait is not None:
            return Answer(429, {"error": "too many requests"}, "rate_limited", retry_after=wait)
    limit = state.settings.max_body_bytes
    too_large = Answer(413, {"error": "body too large", "limit_bytes": limit}, "too_large")
    if request.content_length is not None and request.content_length > limit:
        return too_large
    content_type = request.headers.get("Content-Type", "")
    if not accepts(provider, content_type):
        media = "application/json" + (
            " or application/x-www-form-urlencoded" if provider.form_encoded else ""
        )
        return Answer(
            415, {"error": "unsupported content type", "expected": media}, "unsupported_media"
        )
    async with state.slots:
        try:
            if request.content.is_eof():
                body = await request.read()  # all of it arrived with the headers: no wait
            else:
                # A sender that announces more bytes than it sends would otherwise hold
                # this slot for as long as it keeps the connection open.
                async with asyncio.timeout(state.settings.body_timeout.total_seconds()):
                    body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return too_large
        except TimeoutError:
            seconds = state.settings.body_timeout.total_seconds()
            return Answer(
                408,
                {"error": "request body not received in time", "timeout_seconds": seconds},
                "body_timeout",
            )
        return await state.handler.handle(provider, request.headers, body, content_type)


def _guarded(handler: Handler) -> Handler:
    """Answer an unexpected error with a plain 500 and log it with its delivery id.

    A wrapper per route rather than an aiohttp middleware: the middleware chain is
    rebuilt around every request, which is measurable at thousands of requests a second.
    """

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise  # aiohttp's own answers (404, 405, ...): short text, no traceback
        except Exception:
            delivery = next(
                (request.headers[h] for h in _DELIVERY_HEADERS if h in request.headers), None
            )
            log.exception("unexpected error", extra={"delivery": delivery, "path": request.path})
            return web.Response(status=500, text="internal error\n")

    return guarded
