"""Bitbucket Cloud push webhooks (`X-Event-Key: repo:push`).

The optional secret signs the raw body as `X-Hub-Signature: sha256=<hex>` (GitHub's
SHA-1 header name, SHA-256 value). One delivery may carry several ref changes, each
with `old`/`new` (null on creation/deletion) and flags; it lists commits but never their
files, so apps cannot be filtered by path. Bitbucket names no clone URL in the payload:
the repository is selected by its web link and `bitbucket.org/<full_name>`.
"""

from __future__ import annotations

from collections.abc import Mapping

from receiver.pushes import (
    Headers,
    Ignored,
    MalformedPayload,
    Push,
    optional_str,
    require_map,
    sha_or_none,
)
from receiver.signatures import SecretBook, hex_hmac_check
from schemas.events import Provider
from schemas.types import CommitSha

_REF_PREFIX = {
    "branch": "refs/heads/",
    "named_branch": "refs/heads/",
    "tag": "refs/tags/",
    "annotated_tag": "refs/tags/",
}


class Bitbucket:
    """The `WebhookProvider` for Bitbucket Cloud."""

    name: Provider = "bitbucket"
    form_encoded = False

    def delivery_id(self, headers: Headers) -> str | None:
        return headers.get("X-Request-UUID")

    def authenticate(self, headers: Headers, body: bytes, secrets: SecretBook) -> frozenset[str]:
        presented = headers.get("X-Hub-Signature")
        if not presented:
            return frozenset()
        return secrets.vouching(hex_hmac_check(body, presented, prefix="sha256="))

    def parse(self, headers: Headers, payload: object) -> tuple[Push, ...] | Ignored:
        event = headers.get("X-Event-Key")
        if not event:
            return Ignored("no X-Event-Key header: nothing to do")
        if event != "repo:push":
            return Ignored(f"event '{event}' is not a push")
        body = require_map(payload, "payload")
        repository = require_map(body.get("repository"), "repository")
        urls = _repository_urls(repository)
        changes = require_map(body.get("push"), "push").get("changes")
        if not isinstance(changes, list) or not changes:
            raise MalformedPayload("'push.changes' must be a non-empty list")
        pusher = optional_str(body, "actor.username", "actor.nickname", "actor.display_name")
        return tuple(
            _parse_change(require_map(c, f"push.changes[{i}]"), i, urls, pusher)
            for i, c in enumerate(changes)
        )


def _parse_change(
    change: Mapping[str, object], index: int, urls: tuple[str, ...], pusher: str | None
) -> Push:
    where = f"push.changes[{index}]"
    old, new = change.get("old"), change.get("new")
    if old is None and new is None:
        raise MalformedPayload(f"'{where}' has neither 'old' nor 'new'")
    side = require_map(new if new is not None else old, f"{where}.{'new' if new else 'old'}")
    kind, name = side.get("type"), side.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedPayload(f"'{where}' names no ref")
    ref = f"{_REF_PREFIX.get(str(kind), 'refs/')}{name}"
    commits = change.get("commits")
    truncated = change.get("truncated") is True
    return Push(
        ref=ref,
        before=_target(old, f"{where}.old"),
        after=_target(new, f"{where}.new"),
        repo_urls=urls,
        created=change.get("created") is True or old is None,
        deleted=change.get("closed") is True or new is None,
        forced=change.get("forced") is True,
        changed_paths=None,
        commit_count=len(commits) if isinstance(commits, list) and not truncated else None,
        pusher=pusher,
    )


def _target(side: object, where: str) -> CommitSha | None:
    if side is None:
        return None
    target = require_map(require_map(side, where).get("target"), f"{where}.target")
    return sha_or_none(target.get("hash"), f"{where}.target.hash")


def _repository_urls(repository: Mapping[str, object]) -> tuple[str, ...]:
    urls: list[str] = []
    html = optional_str(repository, "links.html.href")
    if html:
        urls.append(html)
    full_name = optional_str(repository, "full_name")
    if full_name:
        urls.append(f"https://bitbucket.org/{full_name}")
    return tuple(urls)
