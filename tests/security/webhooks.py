"""What a Git host sends, built from scratch: registered repositories, push payloads per
provider, and the headers each provider signs them with.

The hostile-input tests change one thing at a time against these, so every request
they send differs from a genuine delivery in a way the test can name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any

PROVIDERS = ("github", "gitlab", "gitea", "bitbucket")


@dataclass(frozen=True)
class Repo:
    """A registered repository, its provider, and the secrets that sign its webhooks."""

    name: str
    provider: str
    host: str
    path: str  # owner/name, as the host shows it
    secrets: tuple[str, ...]
    app: str

    @property
    def url(self) -> str:
        return f"https://{self.host}/{self.path}.git"


# Distinctive secret values: the secrets tests search logs, events and responses for them.
REPOS = (
    Repo(
        "platform",
        "github",
        "github.com",
        "acme/platform-manifests",
        ("gh-old-S3cr3t-5b7e1c", "gh-new-S3cr3t-9d2f4a"),
        "platform-web",
    ),
    Repo("payments", "gitlab", "gitlab.com", "acme/payments", ("gl-T0ken-3c8e6b",), "payments"),
    Repo("infra", "gitea", "gitea.acme.dev", "acme/infra", ("gt-S3cr3t-1a4d7f",), "infra"),
    Repo("deploy", "bitbucket", "bitbucket.org", "acme/deploy", ("bb-S3cr3t-8e2b5c",), "deploy"),
)
BY_PROVIDER = {repo.provider: repo for repo in REPOS}
UNSIGNED = Repo("unsigned", "github", "github.com", "acme/unsigned", (), "unsigned")
ALL_SECRETS = tuple(s for repo in REPOS for s in repo.secrets)


def config_dict(bootstrap: str, topic_prefix: str, **receiver: Any) -> dict[str, Any]:
    """A configuration registering `REPOS` (secrets inline) and one app following each,
    publishing under the test's own `topic_prefix`."""
    repositories: dict[str, Any] = {
        r.name: {"url": r.url, "webhook_secret": [{"value": s} for s in r.secrets]} for r in REPOS
    }
    repositories[UNSIGNED.name] = {"url": UNSIGNED.url}
    return {
        "kafka": {"bootstrap": bootstrap, "partitions": 3, "topic_prefix": topic_prefix},
        "clusters": {"local": {"in_cluster": True}},
        "repositories": repositories,
        "apps": {
            r.app: {"repo": r.name, "branch": "main", "cluster": "local"}
            for r in (*REPOS, UNSIGNED)
        },
        "receiver": {"max_body_bytes": 65536, **receiver},
    }


def sha(seed: int) -> str:
    return hashlib.sha1(seed.to_bytes(8, "big")).hexdigest()  # noqa: S324 - a commit id, not a MAC


def push_payload(
    provider: str, url: str, *, branch: str = "main", after: str | None = None
) -> dict[str, Any]:
    """A push of one commit to `branch` of the repository at `url`, as `provider` shapes it."""
    before, after = sha(1), after or os.urandom(20).hex()
    host_path = url.split("://", 1)[-1].removesuffix(".git")
    if provider in ("github", "gitea"):
        return {
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": after,
            "repository": {"clone_url": url, "html_url": url.removesuffix(".git")},
            "commits": [{"id": after, "added": [], "modified": ["apps/web/a.yaml"], "removed": []}],
            "total_commits": 1,
            "pusher": {"name": "mallory"},
        }
    if provider == "gitlab":
        return {
            "object_kind": "push",
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": after,
            "project": {"git_http_url": url},
            "commits": [{"id": after, "added": ["apps/a.yaml"], "modified": [], "removed": []}],
            "total_commits_count": 1,
            "user_username": "mallory",
        }
    full_name = host_path.split("/", 1)[-1]
    side = {"type": "branch", "name": branch}
    return {
        "actor": {"username": "mallory"},
        "repository": {"full_name": full_name, "links": {"html": {"href": url}}},
        "push": {
            "changes": [
                {
                    "old": {**side, "target": {"hash": before}},
                    "new": {**side, "target": {"hash": after}},
                    "commits": [{"hash": after}],
                }
            ]
        },
    }


def encode(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


SIGNATURE_HEADER = {
    "github": "X-Hub-Signature-256",
    "gitlab": "X-Gitlab-Token",
    "gitea": "X-Gitea-Signature",
    "bitbucket": "X-Hub-Signature",
}
EVENT_HEADER = {
    "github": ("X-GitHub-Event", "push"),
    "gitlab": ("X-Gitlab-Event", "Push Hook"),
    "gitea": ("X-Gitea-Event", "push"),
    "bitbucket": ("X-Event-Key", "repo:push"),
}
DELIVERY_HEADER = {
    "github": "X-GitHub-Delivery",
    "gitlab": "Idempotency-Key",
    "gitea": "X-Gitea-Delivery",
    "bitbucket": "X-Request-UUID",
}


def signature(provider: str, secret: str, body: bytes) -> str:
    """The value of the provider's signature header for `body` signed with `secret`."""
    if provider == "gitlab":
        return secret  # GitLab sends the token itself
    digest = hex_hmac(secret, body)
    return digest if provider == "gitea" else f"sha256={digest}"


def headers(
    provider: str,
    body: bytes,
    *,
    secret: str | None,
    delivery: str,
    content_type: str = "application/json",
    event: str | None = None,
) -> list[tuple[str, str]]:
    """Headers of a delivery; `secret=None` leaves the signature out."""
    name, default_event = EVENT_HEADER[provider]
    found = [
        ("Content-Type", content_type),
        (name, default_event if event is None else event),
        (DELIVERY_HEADER[provider], delivery),
    ]
    if secret is not None:
        found.append((SIGNATURE_HEADER[provider], signature(provider, secret, body)))
    return found
