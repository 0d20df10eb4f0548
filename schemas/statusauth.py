"""Which credential a commit-status rule authenticates with, known before anything runs.

A commit-status rule may leave out `token`: the notifier then uses the `auth` of the app's
repository, but only when that credential is meant for the rule's API (`host_serves`),
so a repository's token never travels to another host. Whether that holds for every app
a rule covers is known from the file alone, so a rule that could never authenticate is
a configuration error at the line of the rule (`status_credential_issues`), not a
stream of failed notifications later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from schemas.config import (
    COMMIT_STATUS_PROVIDERS,
    AppConfig,
    GitopsConfig,
    NotificationRule,
    RepositoryConfig,
)
from schemas.errors import ConfigIssue

DEFAULT_STATUS_API = {
    "github": "https://api.github.com",
    "gitlab": "https://gitlab.com/api/v4",
    "gitea": "https://gitea.com/api/v1",
    "bitbucket": "https://api.bitbucket.org/2.0",
}
"""The public hosts' API bases, used when a commit-status rule sets no `url`."""

_DEFAULT_PORTS = {"http": 80, "https": 443}

Loc = tuple[str | int, ...]
LineOf = Callable[[Any, Loc], "int | None"]


def status_api_base(rule: NotificationRule) -> str:
    """The API base a commit-status rule posts to (its `url`, resolved, or the default)."""
    url = rule.url
    given = url if isinstance(url, str) else url.resolve().get_secret_value() if url else ""
    return (given or DEFAULT_STATUS_API[rule.provider]).rstrip("/")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def host_serves(repo: RepositoryConfig, provider: str, api_url: str) -> bool:
    """Whether the repository's `auth` is meant for the commit-status API at `api_url`.

    A GitHub App's installation token serves exactly its own `api_url` (and only the
    `github` provider); an HTTPS token serves an API with its repository's scheme, host
    and port, or the host's `api.` name (`github.com` answers at `api.github.com`,
    `bitbucket.org` at `api.bitbucket.org`; GitHub Enterprise, GitLab and Gitea serve
    their API under the repository's own host).
    """
    auth = repo.auth
    if auth is None:
        return False
    if auth.github_app is not None:
        return (
            provider == "github"
            and _origin(auth.github_app.api_url) == _origin(api_url)
            and (
                urlsplit(auth.github_app.api_url).path.rstrip("/")
                == urlsplit(api_url).path.rstrip("/")
            )
        )
    if auth.token is None:
        return False
    scheme, host, port = _origin(repo.url)
    api_scheme, api_host, api_port = _origin(api_url)
    if not host or (scheme, port) != (api_scheme, api_port):
        return False
    return api_host in (host, f"api.{host}")


def covered_apps(config: GitopsConfig, rule: NotificationRule) -> Iterator[tuple[str, AppConfig]]:
    """The configured apps whose moments the rule may notify about."""
    for name, app in config.apps.items():
        if not rule.apps or any(fnmatchcase(name, pattern) for pattern in rule.apps):
            yield name, app


def _why_not(repo: RepositoryConfig | None) -> str:
    if repo is None or repo.auth is None:
        return "has no auth"
    if repo.auth.github_app is not None:
        return f"has a {repo.auth.kind()} for {repo.auth.github_app.api_url}"
    if repo.auth.token is None:
        return f"authenticates with an {repo.auth.kind()}, which serves git only"
    return f"has a token for {urlsplit(repo.url).netloc.rsplit('@', 1)[-1]}"


def status_credential_issues(
    config: GitopsConfig, raw: Any, source: str, line_of: LineOf
) -> list[ConfigIssue]:
    """Commit-status rules without `token` that some app's repository cannot serve."""
    issues = []
    for index, rule in enumerate(config.notifications):
        if rule.provider not in COMMIT_STATUS_PROVIDERS or rule.token is not None:
            continue
        try:
            api = status_api_base(rule)
        except ValueError:
            continue  # the unreadable `url` is reported where secrets are resolved
        unserved: dict[str, list[str]] = {}
        for app_name, app in covered_apps(config, rule):
            repo = config.repositories.get(app.repo)
            if repo is None or not host_serves(repo, rule.provider, api):
                unserved.setdefault(app.repo, []).append(app_name)
        for repo_name, apps in sorted(unserved.items()):
            listed = ", ".join(apps[:3]) + (f" and {len(apps) - 3} more" if len(apps) > 3 else "")
            reason = _why_not(config.repositories.get(repo_name))
            loc: Loc = ("notifications", index)
            issues.append(
                ConfigIssue(
                    source,
                    line_of(raw, loc),
                    f"notifications.{index}",
                    f"rule '{rule.name}' has no 'token', and repository '{repo_name}' (of app"
                    f" {listed}) {reason}: nothing authenticates it at {rule.provider} {api};"
                    f" set 'token' on the rule, or give repository '{repo_name}' an HTTPS"
                    " token or github_app auth for that host",
                )
            )
    return issues
