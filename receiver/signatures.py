"""Webhook authentication: which registered repository's secret vouches for these bytes.

Checks run on the raw body before any JSON is parsed, so an unauthenticated sender cannot
reach the parser. Every comparison is constant-time. A repository may list several
secrets (rotation); any one of them is accepted. Secrets live only inside this module's
`SecretBook` and are never formatted into text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping

from schemas.config import GitopsConfig

STANDARD_WEBHOOKS_TOLERANCE = 300.0
"""Seconds a Standard Webhooks timestamp may differ from our clock (the spec's default)."""


class SecretBook:
    """The webhook secrets of every registered repository, grouped by value.

    Grouping means a secret shared by several repositories is hashed once per request.
    """

    def __init__(self, entries: Iterable[tuple[str, bytes]]) -> None:
        grouped: dict[bytes, set[str]] = {}
        for repository, secret in entries:
            if secret:
                grouped.setdefault(secret, set()).add(repository)
        self._by_secret: dict[bytes, frozenset[str]] = {
            secret: frozenset(names) for secret, names in grouped.items()
        }

    @classmethod
    def from_config(cls, config: GitopsConfig) -> SecretBook:
        """Resolve every repository's secrets once, at start-up."""
        return cls(
            (name, ref.resolve().get_secret_value().encode())
            for name, repo in config.repositories.items()
            for ref in repo.webhook_secrets()
        )

    def __repr__(self) -> str:
        return f"SecretBook({len(self._by_secret)} secrets)"

    def __len__(self) -> int:
        return len(self._by_secret)

    def vouching(self, check: Callable[[bytes], bool]) -> frozenset[str]:
        """Repositories owning a secret for which `check(secret)` holds.

        Every secret is checked (no early exit), so timing does not tell which one matched.
        """
        found: set[str] = set()
        for secret, repositories in self._by_secret.items():
            if check(secret):
                found.update(repositories)
        return frozenset(found)


def _ascii(value: str) -> bytes:
    return value.strip().encode("utf-8", "replace")


def hex_hmac_check(body: bytes, presented: str, *, prefix: str = "") -> Callable[[bytes], bool]:
    """A check for `<prefix><hex HMAC-SHA256(secret, body)>` (GitHub, Gitea, Bitbucket)."""
    given = _ascii(presented)
    wanted_prefix = prefix.encode()
    if not given.lower().startswith(wanted_prefix):
        return lambda _secret: False
    digest = given[len(wanted_prefix) :].lower()

    def check(secret: bytes) -> bool:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        return hmac.compare_digest(expected, digest)

    return check


def token_check(presented: str) -> Callable[[bytes], bool]:
    """A check for a secret sent as-is (GitLab's `X-Gitlab-Token`)."""
    given = _ascii(presented)
    return lambda secret: hmac.compare_digest(secret, given)


def standard_webhooks_check(
    headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> Callable[[bytes], bool]:
    """A check for Standard Webhooks signatures (GitLab signing tokens).

    The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the header may carry
    several space-separated `v1,<base64>` signatures and any one may match. A timestamp
    outside the tolerance fails every secret, which stops replays of old deliveries.
    """
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    presented = headers.get("webhook-signature", "")
    try:
        sent_at = int(stamp)
    except ValueError:
        return lambda _secret: False
    current = time.time() if now is None else now
    if not msg_id or abs(current - sent_at) > STANDARD_WEBHOOKS_TOLERANCE:
        return lambda _secret: False
    signatures = [
        _ascii(part.split(",", 1)[1])
        for part in presented.split()
        if part.startswith("v1,") and len(part) > 3
    ]
    if not signatures:
        return lambda _secret: False
    content = _ascii(msg_id) + b"." + _ascii(stamp) + b"." + body

    def check(secret: bytes) -> bool:
        key = signing_key(secret)
        expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
        # Compare against every candidate so the time taken does not depend on which matched.
        return sum(hmac.compare_digest(expected, given) for given in signatures) > 0

    return check


def signing_key(secret: bytes) -> bytes:
    """The HMAC key of a Standard Webhooks secret: `whsec_<base64>` decoded, else the bytes."""
    if secret.startswith(b"whsec_"):
        try:
            return base64.b64decode(secret[len(b"whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            return secret
    return secret
