"""What every provider module produces: a verified push in one shape, or a reason to ignore.

Provider modules (`github`, `gitlab`, `gitea`, `bitbucket`) only translate; deciding which
apps follow a push, publishing and answering HTTP happen once, elsewhere, for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from multidict import CIMultiDictProxy

from receiver.signatures import SecretBook
from schemas.events import Provider
from schemas.types import CommitSha

ZERO_SHA = "0" * 40

Headers = CIMultiDictProxy[str] | Mapping[str, str]


class MalformedPayload(Exception):
    """The body is not the event its headers announce; the message names what is wrong."""


@dataclass(frozen=True)
class Push:
    """One ref update, as every provider reports it.

    `changed_paths` is None when the payload does not list every changed file (GitHub caps
    the commits it includes, Bitbucket lists none): then nobody may filter apps by path.
    """

    ref: str
    before: CommitSha | None
    after: CommitSha | None
    repo_urls: tuple[str, ...]
    """Every URL the payload gives for the repository; matching uses them only to select."""
    created: bool = False
    deleted: bool = False
    forced: bool = False
    changed_paths: tuple[str, ...] | None = None
    commit_count: int | None = None
    pusher: str | None = None

    @property
    def branch(self) -> str | None:
        """The branch name for `refs/heads/<branch>`; None for tags and other refs."""
        prefix = "refs/heads/"
        return self.ref[len(prefix) :] if self.ref.startswith(prefix) else None


@dataclass(frozen=True)
class Ignored:
    """An event understood but not acted on (ping, pull request, ...): answered 200."""

    reason: str


class WebhookProvider(Protocol):
    """How one Git host signs, identifies and describes its webhook deliveries."""

    name: Provider
    form_encoded: bool
    """Whether `application/x-www-form-urlencoded` bodies (`payload=<json>`) are accepted."""

    def delivery_id(self, headers: Headers) -> str | None:
        """The host's id for this delivery, stable across its redeliveries when it has one."""

    def authenticate(self, headers: Headers, body: bytes, secrets: SecretBook) -> frozenset[str]:
        """Names of the repositories whose secret signed these exact bytes (empty: refuse)."""

    def parse(self, headers: Headers, payload: object) -> tuple[Push, ...] | Ignored:
        """Turn a decoded JSON payload into its ref updates, or explain why it is ignored."""


def sha_or_none(value: object, where: str) -> CommitSha | None:
    """A 40-hex commit id; the all-zero id, which means "no commit", becomes None."""
    if value is None:
        return None
    if not isinstance(value, str) or not _is_sha(value):
        raise MalformedPayload(
            f"field '{where}' must be a 40-character hex commit id, got {_show(value)}"
        )
    return None if value == ZERO_SHA else CommitSha(value.lower())


def require_str(payload: Mapping[str, object], key: str, where: str = "") -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"field '{where}{key}' must be a non-empty string")
    return value


def require_map(payload: object, where: str) -> Mapping[str, object]:
    if not isinstance(payload, Mapping):
        raise MalformedPayload(f"'{where}' must be a JSON object")
    return payload


def optional_str(payload: Mapping[str, object], *keys: str) -> str | None:
    """The first of `keys` (nested with dots) that holds a non-empty string."""
    for key in keys:
        node: object = payload
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, str) and node:
            return node
    return None


def changed_paths_of(commits: object, where: str) -> tuple[str, ...]:
    """Union of `added`/`modified`/`removed` over commit objects (GitHub, GitLab, Gitea)."""
    if not isinstance(commits, list):
        raise MalformedPayload(f"'{where}' must be a list of commits")
    seen: dict[str, None] = {}
    for index, commit in enumerate(commits):
        entry = require_map(commit, f"{where}[{index}]")
        for key in ("added", "modified", "removed"):
            files = entry.get(key) or []
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                raise MalformedPayload(f"'{where}[{index}].{key}' must be a list of paths")
            for name in files:
                seen.setdefault(name, None)
    return tuple(seen)


def _is_sha(value: str) -> bool:
    # Stripping every hex digit from both ends leaves nothing only if all 40 are hex.
    return len(value) == 40 and not value.strip("0123456789abcdefABCDEF")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
