"""Gitea and Forgejo push webhooks.

Both send GitHub's payload shape. Forgejo sends its own `X-Forgejo-*` headers beside
Gitea's copies; the signature is bare hex HMAC-SHA256 in `X-Forgejo-Signature` /
`X-Gitea-Signature` (and GitHub-style in `X-Hub-Signature-256`). Gitea caps the commits
in a payload by an admin setting and only newer versions send `total_commits`, so the
file list counts as complete only when that total confirms it.
"""

from __future__ import annotations

import dataclasses

from receiver.github import parse_push
from receiver.pushes import Headers, Ignored, Push, require_map
from receiver.signatures import SecretBook, hex_hmac_check
from schemas.events import Provider

_EVENT_HEADERS = ("X-Forgejo-Event", "X-Gitea-Event", "X-Gogs-Event")
_DELIVERY_HEADERS = ("X-Forgejo-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery")
_SIGNATURE_HEADERS = (
    ("X-Forgejo-Signature", ""),
    ("X-Gitea-Signature", ""),
    ("X-Hub-Signature-256", "sha256="),
)


class Gitea:
    """The `WebhookProvider` for Gitea and Forgejo."""

    name: Provider = "gitea"
    form_encoded = True

    def delivery_id(self, headers: Headers) -> str | None:
        return _first(headers, _DELIVERY_HEADERS)

    def authenticate(self, headers: Headers, body: bytes, secrets: SecretBook) -> frozenset[str]:
        vouching: set[str] = set()
        for header, prefix in _SIGNATURE_HEADERS:
            presented = headers.get(header)
            if presented:  # Gitea sends these headers empty when no secret is set
                vouching |= secrets.vouching(hex_hmac_check(body, presented, prefix=prefix))
        return frozenset(vouching)

    def parse(self, headers: Headers, payload: object) -> tuple[Push, ...] | Ignored:
        event = _first(headers, _EVENT_HEADERS)
        if not event:
            return Ignored("no X-Gitea-Event or X-Forgejo-Event header: nothing to do")
        if event != "push":
            return Ignored(f"event '{event}' is not a push")
        body = require_map(payload, "payload")
        push = parse_push(body)
        total, commits = body.get("total_commits"), body.get("commits")
        confirmed = isinstance(total, int) and isinstance(commits, list) and total == len(commits)
        if push.changed_paths is not None and not confirmed:
            push = dataclasses.replace(push, changed_paths=None, commit_count=None)
        return (push,)


def _first(headers: Headers, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = headers.get(name)
        if value:
            return value
    return None
