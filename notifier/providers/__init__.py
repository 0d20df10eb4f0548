"""Providers: each turns one notification into the one HTTP request its API expects.

A provider is a function `build(note) -> Outgoing`, one module each, with no I/O: delivery
(retries, rate limits, timeouts) is the same for all of them and lives in
`notifier.delivery`. The requests follow each provider's published API description; the
tests serve those descriptions from a fake API that rejects any request that does not
match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import SecretStr

from notifier.moments import Moment
from schemas.config import COMMIT_STATUS_PROVIDERS, NotificationRule, SecretRef
from schemas.statusauth import status_api_base


@dataclass(frozen=True)
class Note:
    """One notification to build: the rule, the moment, its text and the app's repository."""

    rule: NotificationRule
    moment: Moment
    text: str
    repo_url: str | None
    """The app's repository URL from the configuration (commit-status targets)."""
    token: str = ""
    """What a commit-status request authenticates with: the rule's `token`, or the app's
    repository credential for the same host (`notifier.tokens`)."""


@dataclass(frozen=True)
class Outgoing:
    """An HTTP request ready to send; `where` names it in logs and events without secrets."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    where: str = ""
    method: str = "POST"


def secret_value(ref: str | SecretRef | None) -> str:
    if ref is None:
        return ""
    if isinstance(ref, str):
        return ref
    value: SecretStr = ref.resolve()
    return value.get_secret_value()


def api_base(rule: NotificationRule) -> str:
    return status_api_base(rule)


def endpoint_where(rule: NotificationRule) -> str:
    """A chat or webhook endpoint for logs: its host only when the URL is a secret."""
    url = secret_value(rule.url)
    if isinstance(rule.url, str):
        return url
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return f"{rule.provider} webhook at {host}"


Builder = Callable[[Note], Outgoing]


def builder(provider: str) -> Builder:
    from notifier.providers import bitbucket, gitea, github, gitlab, msteams, slack, webhook

    builders: dict[str, Builder] = {
        "github": github.build,
        "gitlab": gitlab.build,
        "gitea": gitea.build,
        "bitbucket": bitbucket.build,
        "slack": slack.build,
        "msteams": msteams.build,
        "webhook": webhook.build,
    }
    return builders[provider]


def is_commit_status(provider: str) -> bool:
    return provider in COMMIT_STATUS_PROVIDERS
