"""GitHub (github.com, Enterprise Server and Cloud) push webhooks.

GitHub signs the raw body with `X-Hub-Signature-256: sha256=<hex>`, names the event in
`X-GitHub-Event` and the delivery in `X-GitHub-Delivery` (kept on redelivery). A push
payload lists its commits with their added/modified/removed files, but GitHub includes
at most 20 commits and sends no total, so a list that reaches the cap is treated as
incomplete; so are force pushes and new branches, whose commit list does not describe
the difference to what was deployed before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

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
from receiver.signatures import SecretBook, hex_hmac_check
from schemas.events import Provider

COMMIT_CAP: Final = 20
"""The most commits GitHub puts in a push payload; a list this long may be truncated."""

URL_FIELDS: Final = ("clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url")


class GitHub:
    """The `WebhookProvider` for GitHub."""

    name: Provider = "github"
    form_encoded = True

    def delivery_id(self, headers: Headers) -> str | None:
        return headers.get("X-GitHub-Delivery")

    def authenticate(self, headers: Headers, body: bytes, secrets: SecretBook) -> frozenset[str]:
        presented = headers.get("X-Hub-Signature-256")
        if not presented:
            return frozenset()
        return secrets.vouching(hex_hmac_check(body, presented, prefix="sha256="))

    def parse(self, headers: Headers, payload: object) -> tuple[Push, ...] | Ignored:
        event = headers.get("X-GitHub-Event")
        if not event:
            return Ignored("no X-GitHub-Event header: nothing to do")
        if event == "ping":
            return Ignored("ping")
        if event != "push":
            return Ignored(f"event '{event}' is not a push")
        return (parse_push(require_map(payload, "payload")),)


def parse_push(body: Mapping[str, object]) -> Push:
    """A GitHub-shaped push payload (Gitea and Forgejo send the same shape)."""
    repository = require_map(body.get("repository"), "repository")
    before = sha_or_none(body.get("before"), "before")
    after = sha_or_none(body.get("after"), "after")
    ref = require_str(body, "ref")
    created = _flag(body, "created", default=before is None)
    deleted = _flag(body, "deleted", default=after is None)
    forced = _flag(body, "forced", default=False)
    commits = body.get("commits") or []
    paths = changed_paths_of(commits, "commits")
    count = len(commits) if isinstance(commits, list) else 0
    complete = not (created or deleted or forced) and count < COMMIT_CAP
    return Push(
        ref=ref,
        before=before,
        after=after,
        repo_urls=repository_urls(repository, URL_FIELDS),
        created=created,
        deleted=deleted,
        forced=forced,
        changed_paths=paths if complete else None,
        commit_count=count if complete else None,
        pusher=optional_str(body, "pusher.name", "pusher.login", "sender.login"),
    )


def repository_urls(repository: Mapping[str, object], fields: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for f in fields if isinstance(v := repository.get(f), str) and v)


def _flag(body: Mapping[str, object], key: str, *, default: bool) -> bool:
    value = body.get(key)
    return value if isinstance(value, bool) else default
