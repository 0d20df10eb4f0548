"""Sending one notification: render, build the provider's request, deliver, account for it.

`send` never raises (but for cancellation): a notification ends delivered or given up,
and a give-up is logged and published as `gitops.notification.failed`, with every secret
of the configuration replaced by `***` in the error text first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from notifier.delivery import Deliverer
from notifier.errors import DeliveryError, DeliveryGaveUp, PermanentDeliveryError
from notifier.metrics import NotifierMetrics
from notifier.moments import Moment
from notifier.providers import Note, Outgoing, builder, is_commit_status, secret_value
from notifier.publishing import FailurePublisher
from notifier.templating import Templates
from notifier.tokens import StatusToken, StatusTokens
from schemas.config import GitopsConfig, NotificationRule
from schemas.events import NotificationFailedData
from schemas.types import AppName, CommitSha

log = logging.getLogger(__name__)


def rule_secrets(config: GitopsConfig) -> list[str]:
    """Every secret value the rules hold (chat URLs given by reference count as secrets),
    and the repositories' credentials, which commit statuses may borrow."""
    refs = [
        ref
        for rule in config.notifications
        for ref in (rule.token, rule.secret, None if isinstance(rule.url, str) else rule.url)
    ]
    refs.extend(
        ref for repo in config.repositories.values() if repo.auth for ref in repo.auth.secret_refs()
    )
    values = []
    for ref in refs:
        try:
            value = secret_value(ref)
        except ValueError:
            continue  # unreadable here: then it cannot be in a message either
        if len(value) >= 4:
            values.append(value)
    return sorted(set(values), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class Sender:
    def __init__(
        self,
        *,
        config: GitopsConfig,
        deliverer: Deliverer,
        templates: Templates,
        publisher: FailurePublisher,
        metrics: NotifierMetrics,
        tokens: StatusTokens,
    ) -> None:
        self._config = config
        self._deliverer = deliverer
        self._templates = templates
        self._publisher = publisher
        self._metrics = metrics
        self._tokens = tokens
        self._secrets = rule_secrets(config)

    def _repo_url(self, app: str) -> str | None:
        app_config = self._config.apps.get(app)
        repo = self._config.repositories.get(app_config.repo) if app_config else None
        return repo.url if repo else None

    async def send(self, rule: NotificationRule, moment: Moment) -> None:
        provider = rule.provider
        if is_commit_status(provider) and not moment.commit:
            # A request for "the branch head": its outcome names the commit, and gets the status.
            self._metrics.deliveries.labels(provider=provider, result="no_commit").inc()
            log.debug("no commit status for %s of %s: no commit named", moment.kind, moment.app)
            return
        sent_with: list[str] = []
        try:
            text = "" if provider == "webhook" else self._templates.render(rule, moment)
            outgoing, attempts = await self._deliver(rule, moment, text, sent_with)
        except DeliveryError as exc:
            await self._gave_up(rule, moment, DeliveryGaveUp(exc, 0), sent_with)
            return
        except DeliveryGaveUp as exc:
            await self._gave_up(rule, moment, exc, sent_with)
            return
        except Exception as exc:  # a bug must not stall the partition or lose the trace
            log.exception("notifying %s about %s of %s crashed", rule.name, moment.kind, moment.app)
            error = PermanentDeliveryError(f"internal error in the notifier: {type(exc).__name__}")
            await self._gave_up(rule, moment, DeliveryGaveUp(error, 0))
            return
        self._metrics.deliveries.labels(provider=provider, result="delivered").inc()
        age = time.time() - moment.event.time.timestamp()
        self._metrics.delivery_seconds.labels(provider=provider).observe(max(0.0, age))
        log.info(
            "notified %s: %s %s",
            outgoing.where,
            moment.app,
            moment.kind,
            extra={"rule": rule.name, "app": moment.app, "attempts": attempts},
        )

    async def _deliver(
        self, rule: NotificationRule, moment: Moment, text: str, sent_with: list[str]
    ) -> tuple[Outgoing, int]:
        """Build and deliver; a borrowed GitHub App token refused with 401 is minted again
        once (it may have been revoked before it expired)."""
        attempts = 0
        for last in (False, True):
            token = await self._token(rule, moment)
            sent_with.append(token.value)
            note = Note(rule, moment, text, self._repo_url(moment.app), token.value)
            outgoing = builder(rule.provider)(note)
            try:
                return outgoing, attempts + await self._deliverer.deliver(rule.provider, outgoing)
            except DeliveryGaveUp as exc:
                attempts += exc.attempts
                if last or exc.error.status != 401 or not self._tokens.renew(token):
                    raise DeliveryGaveUp(exc.error, attempts) from None
                log.info(
                    "%s refused the installation token with 401; minting a new one",
                    outgoing.where,
                    extra={"rule": rule.name, "app": moment.app},
                )
        raise AssertionError("unreachable")

    async def _token(self, rule: NotificationRule, moment: Moment) -> StatusToken:
        if not is_commit_status(rule.provider):
            return StatusToken("")
        try:
            token, _ = await self._deliverer.retrying(lambda: self._tokens.token(rule, moment.app))
        except DeliveryGaveUp as exc:
            raise exc.error from None  # no request went to the provider: "not sent"
        return token

    def superseded(self, rule: NotificationRule) -> None:
        self._metrics.deliveries.labels(provider=rule.provider, result="superseded").inc()

    async def _gave_up(
        self,
        rule: NotificationRule,
        moment: Moment,
        exc: DeliveryGaveUp,
        sent_with: Iterable[str] = (),
    ) -> None:
        minted = [t for t in sent_with if len(t) >= 4]
        error = redact(str(exc), [*sorted(minted, key=len, reverse=True), *self._secrets])
        self._metrics.deliveries.labels(provider=rule.provider, result="failed").inc()
        log.warning(
            "gave up notifying %s about %s of %s: %s",
            rule.name,
            moment.kind,
            moment.app,
            error,
            extra={"rule": rule.name, "app": moment.app, "event_id": moment.event.id},
        )
        await self._publisher.publish(
            NotificationFailedData(
                rule=rule.name,
                provider=rule.provider,
                app=AppName(moment.app),
                commit=CommitSha(moment.commit) if moment.commit else None,
                outcome=moment.kind,
                event_id=moment.event.id,
                attempts=exc.attempts,
                status=exc.error.status,
                error=error,
            )
        )
