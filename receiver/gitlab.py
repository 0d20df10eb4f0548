"""GitLab push webhooks: project and group hooks (`Push Hook`, `Tag Push Hook`) and system hooks.

GitLab authenticates with a secret token sent in plain text (`X-Gitlab-Token`, compared
in constant time) and, from 19.0, with a Standard Webhooks signature over
`{webhook-id}.{webhook-timestamp}.{body}`; either is accepted. Deletions are pushes whose
`after` is all zeros. `total_commits_count` tells whether the listed commits (capped at
20) are all of them, so the file list can be trusted only when the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping

from receiver.github import repository_urls
from receiver.pushes import (
    Headers,
    Ignored,
    Push,
    changed_paths_of,
    optional_str,
    require_map,
    require_str,
    sha_or_none,
)
from receiver.signatures import SecretBook, standard_webhooks_check, token_check
from schemas.events import Provider

_DELIVERY_HEADERS = (
    "Idempotency-Key",
    "webhook-id",
    "X-Gitlab-Event-UUID",
    "X-Gitlab-Webhook-UUID",
)
_PUSH_KINDS = {"push", "tag_push"}
_PROJECT_URLS = ("git_http_url", "git_ssh_url", "http_url", "ssh_url", "web_url", "url")
_REPOSITORY_URLS = ("git_http_url", "git_ssh_url", "url", "homepage")


class GitLab:
    """The `WebhookProvider` for GitLab."""

    name: Provider = "gitlab"
    form_encoded = False

    def delivery_id(self, headers: Headers) -> str | None:
        # Idempotency-Key (17.4+) stays the same across retries; the UUIDs are fallbacks.
        for name in _DELIVERY_HEADERS:
            value = headers.get(name)
            if value:
                return value
        return None

    def authenticate(self, headers: Headers, body: bytes, secrets: SecretBook) -> frozenset[str]:
        vouching: set[str] = set()
        token = headers.get("X-Gitlab-Token")
        if token:
            vouching |= secrets.vouching(token_check(token))
        if headers.get("webhook-signature"):
            vouching |= secrets.vouching(standard_webhooks_check(headers, body))
        return frozenset(vouching)

    def parse(self, headers: Headers, payload: object) -> tuple[Push, ...] | Ignored:
        event = headers.get("X-Gitlab-Event")
        if not event:
            return Ignored("no X-Gitlab-Event header: nothing to do")
        body = require_map(payload, "payload")
        if event == "System Hook":
            kind = body.get("object_kind") or body.get("event_name")
            if not isinstance(kind, str) or kind not in _PUSH_KINDS:
                return Ignored(f"system hook event {kind!r:.80} is not a push")
        elif event not in ("Push Hook", "Tag Push Hook"):
            return Ignored(f"event '{event}' is not a push")
        return (_parse_push(body),)


def _parse_push(body: Mapping[str, object]) -> Push:
    before = sha_or_none(body.get("before"), "before")
    after = sha_or_none(body.get("after"), "after")
    ref = require_str(body, "ref")
    urls: tuple[str, ...] = ()
    for section, fields in (("project", _PROJECT_URLS), ("repository", _REPOSITORY_URLS)):
        if body.get(section) is not None:
            urls += repository_urls(require_map(body.get(section), section), fields)
    commits = body.get("commits") or []
    paths = changed_paths_of(commits, "commits")
    listed = len(commits) if isinstance(commits, list) else 0
    total = body.get("total_commits_count")
    created, deleted = before is None, after is None
    complete = not (created or deleted) and isinstance(total, int) and total == listed
    return Push(
        ref=ref,
        before=before,
        after=after,
        repo_urls=urls,
        created=created,
        deleted=deleted,
        changed_paths=paths if complete else None,
        commit_count=total if isinstance(total, int) else None,
        pusher=optional_str(body, "user_username", "user_name"),
    )
