"""One webhook delivery, from raw bytes to an answer: authenticate, parse, select, publish.

This is the receiver's decision procedure, kept apart from HTTP so every rule reads in
one place: nothing is parsed before a registered secret vouched for the bytes; a payload
only selects registered repositories; the answer is 202 (or 200 for a branch nobody
follows) only after the broker acknowledged every message the delivery produced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast
from urllib.parse import parse_qs

from receiver import encoding
from receiver.dedupe import DeliveryLedger
from receiver.matching import Registry
from receiver.metrics import ReceiverMetrics
from receiver.publishing import Message, Publisher, PublishError
from receiver.pushes import Headers, Ignored, MalformedPayload, Push, WebhookProvider
from receiver.signatures import SecretBook
from schemas.events import PushReceived, PushReceivedData, SyncRequested, SyncRequestedData
from schemas.topics import Topics
from schemas.types import AppName, DeliveryId

log = logging.getLogger("receiver.deliveries")

JSON_TYPES = ("application/json",)
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_DELIVERY_ID = 200


@dataclass(frozen=True)
class Answer:
    """What to tell the Git host, plus the outcome label counted in metrics."""

    status: int
    body: dict[str, object]
    outcome: str
    retry_after: int | None = None


Recorded = tuple[int, str, bytes]
"""The answer given for a published delivery, remembered for its dedupe window: status,
outcome and the JSON body.

A plain tuple of atomic values, so the garbage collector stops tracking an entry after
its first pass (it does not do that for NamedTuples or instances): the ledger holds up
to 100,000 of them, and as dataclasses with dict bodies every full collection walked
them all and paused the receiver for ~85 ms.
"""


def _remembered(status: int, outcome: str, body: dict[str, object]) -> Recorded:
    return (status, outcome, encoding.dumps(body))


def _recalled(recorded: Recorded, **extra: object) -> Answer:
    status, outcome, raw = recorded
    body = cast(dict[str, object], encoding.loads(raw.decode()))  # `_remembered` wrote it
    return Answer(status, {**body, **extra}, "duplicate" if extra else outcome)


@dataclass
class _Plan:
    """The messages one delivery produces, and what to answer once they are acknowledged."""

    messages: list[Message] = field(default_factory=list)
    apps: list[AppName] = field(default_factory=list)
    unfollowed: list[str] = field(default_factory=list)
    """Branches pushed that no app follows."""
    other: bool = False
    """Whether some push was something else (followed branch, tag, deletion)."""


def accepts(provider: WebhookProvider, content_type: str) -> bool:
    """Whether this provider's bodies may come with this media type."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json")):
        return True
    return provider.form_encoded and kind == FORM_TYPE


class DeliveryHandler:
    """Decides the answer for each delivery; shared by all provider routes."""

    def __init__(
        self,
        *,
        secrets: SecretBook,
        registry: Registry,
        publisher: Publisher,
        ledger: DeliveryLedger[Recorded],
        metrics: ReceiverMetrics,
        topics: Topics,
        publish_timeout: float,
        retry_after: int,
    ) -> None:
        self._secrets = secrets
        self._registry = registry
        self._publisher = publisher
        self._ledger = ledger
        self._metrics = metrics
        self._topics = topics
        self._publish_timeout = publish_timeout
        self._retry_after = retry_after

    async def handle(
        self, provider: WebhookProvider, headers: Headers, body: bytes, content_type: str
    ) -> Answer:
        vouching = provider.authenticate(headers, body, self._secrets)
        if not vouching:
            self._metrics.signature_failures.labels(provider.name).inc()
            return Answer(401, {"error": "unauthorized"}, "unauthorized")
        delivery = provider.delivery_id(headers) or "sha256:" + hashlib.sha256(body).hexdigest()
        if len(delivery) > MAX_DELIVERY_ID or not delivery.isprintable():
            return _malformed(f"delivery id header is longer than {MAX_DELIVERY_ID} characters")
        try:
            payload = decode(body, content_type)
            parsed = provider.parse(headers, payload)
        except MalformedPayload as exc:
            return _malformed(str(exc))
        if isinstance(parsed, Ignored):
            return Answer(200, {"status": "ignored", "reason": parsed.reason}, "ignored")
        plan = self._plan(provider, DeliveryId(delivery), parsed, vouching)
        if isinstance(plan, Answer):
            return plan
        key = f"{provider.name}:{delivery}"
        known = self._ledger.recorded(key)
        if known is not None:
            return _recalled(known, duplicate=True)
        try:
            recorded = await self._ledger.once(
                key, lambda: self._publish(delivery, plan), timeout=self._publish_timeout
            )
            return _recalled(recorded)
        except (PublishError, TimeoutError) as exc:
            self._publisher.mark_unresponsive()
            log.warning(
                "publish failed; answering 503",
                extra={"delivery": delivery, "provider": provider.name, "error": str(exc)},
            )
            return Answer(
                503,
                {"error": "the event broker is unavailable; retry later"},
                "unavailable",
                retry_after=self._retry_after,
            )

    def _plan(
        self,
        provider: WebhookProvider,
        delivery: DeliveryId,
        pushes: Sequence[Push],
        vouching: frozenset[str],
    ) -> _Plan | Answer:
        plan = _Plan()
        unregistered = 0
        source = f"/gitops/receiver/{provider.name}"
        now = datetime.now(UTC)
        for index, push in enumerate(pushes):
            selection = self._registry.select(push.repo_urls)
            if selection is None:
                unregistered += 1
                continue
            repositories = selection.repositories & vouching
            if not repositories:
                # Signed with another repository's secret: not good enough for this one.
                self._metrics.signature_failures.labels(provider.name).inc()
                return Answer(401, {"error": "unauthorized"}, "unauthorized")
            updates_branch = push.branch is not None and not push.deleted
            if updates_branch and not self._registry.following(push, repositories):
                plan.unfollowed.append(push.ref.removeprefix("refs/heads/"))
            else:
                plan.other = True
            requests = self._registry.needing_sync(push, repositories)
            event = PushReceived(
                id=_event_id(provider.name, delivery, index, None),
                source=source,
                time=now,
                subject=push.ref,
                data=PushReceivedData(
                    provider=provider.name,
                    delivery_id=delivery,
                    repo_url=selection.repo_url,
                    repositories=sorted(repositories),
                    ref=push.ref,
                    before=push.before,
                    after=push.after,
                    created=push.created,
                    deleted=push.deleted,
                    forced=push.forced,
                    changed_paths=None if push.changed_paths is None else list(push.changed_paths),
                    commit_count=push.commit_count,
                    pusher=push.pusher,
                    apps=[app for app, _ in requests],
                ),
            )
            # The push event goes first so a consumer of both topics sees cause before effect.
            plan.messages.append(
                Message(self._topics.push_events, selection.repo_url.encode(), event.to_bytes())
            )
            for app, repo in requests:
                plan.apps.append(app)
                request = SyncRequested(
                    id=_event_id(provider.name, delivery, index, app),
                    source=source,
                    time=now,
                    subject=app,
                    data=SyncRequestedData(
                        app=app,
                        repo_url=self._registry.clone_url(repo),
                        branch=push.branch or "",
                        commit=push.after,
                        before=push.before,
                        reason="webhook",
                        delivery_id=delivery,
                    ),
                )
                plan.messages.append(
                    Message(self._topics.sync_requests, app.encode(), request.to_bytes())
                )
        if unregistered == len(pushes):
            return Answer(
                200, {"status": "ignored", "reason": "repository not registered"}, "unregistered"
            )
        return plan

    async def _publish(self, delivery: str, plan: _Plan) -> Recorded:
        started = time.perf_counter()
        await self._publisher.publish(plan.messages)
        self._metrics.publish_seconds.observe(time.perf_counter() - started)
        for message in plan.messages:
            self._metrics.count_published(message.topic)
        if plan.unfollowed and not plan.other:
            branches = ", ".join(sorted(set(plan.unfollowed)))
            body: dict[str, object] = {
                "status": "recorded",
                "reason": f"no app follows branch {branches}",
                "delivery": delivery,
                "apps": [],
            }
            return _remembered(200, "not_followed", body)
        body = {"status": "accepted", "delivery": delivery, "apps": sorted(set(plan.apps))}
        return _remembered(202, "accepted", body)


def decode(body: bytes, content_type: str) -> object:
    """The JSON payload of a body: plain JSON, or the `payload` field of a form post."""
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPayload("the body is not UTF-8 text") from None
    if kind == FORM_TYPE:
        try:
            fields = parse_qs(text, keep_blank_values=True, max_num_fields=100)
        except ValueError:
            raise MalformedPayload("the form body has too many fields") from None
        values = fields.get("payload")
        if not values:
            raise MalformedPayload("the form body has no 'payload' field")
        text = values[0]
    try:
        payload = encoding.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload(f"the body is not valid JSON: {_json_error(exc)}") from None
    if not isinstance(payload, dict):
        raise MalformedPayload("the JSON body must be an object")
    return payload


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "cannot decode"


def _malformed(detail: str) -> Answer:
    return Answer(400, {"error": "malformed", "detail": detail}, "malformed")


def _event_id(provider: str, delivery: str, index: int, app: str | None) -> str:
    """Deterministic event ids (unique within the source, as CloudEvents asks): a delivery
    published twice carries the same ids, so consumers can drop the copies that
    at-least-once delivery lets through."""
    return f"{provider}:{delivery}:{index}:{app or 'push'}"
