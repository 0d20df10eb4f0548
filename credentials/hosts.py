"""What a request to a repository's host sends, from the repository's `auth`.

The syncer's git cache asks for HTTP basic auth (`basic_auth`); the notifier, posting
commit statuses, asks for an API token (`api_token`) when `serves_api` says the
repository's credentials are good for that API. A token from `auth.token` is used as
is; a GitHub App's installation token is minted on demand and renewed after a 401
(`renew`).
"""

from __future__ import annotations

from pydantic import SecretStr

from credentials.githubapp import InstallationTokens
from schemas.config import RepositoryConfig
from schemas.statusauth import host_serves

APP_USERNAME = "x-access-token"
"""The basic-auth user GitHub documents for git over HTTPS with an installation token."""


class HostCredentials:
    """Per-process credentials for git hosts; an async context manager."""

    def __init__(self, tokens: InstallationTokens | None = None) -> None:
        self.tokens = tokens if tokens is not None else InstallationTokens()

    async def __aenter__(self) -> HostCredentials:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.tokens.close()

    async def basic_auth(self, repo: RepositoryConfig) -> tuple[str, SecretStr] | None:
        """(user, password) for git over HTTPS, or None when the repository has neither."""
        auth = repo.auth
        if auth is None:
            return None
        if auth.github_app is not None:
            token = await self.tokens.token(
                auth.github_app,
                ca_bundle=auth.ca_bundle.file if auth.ca_bundle else None,
                proxy=auth.proxy,
            )
            return APP_USERNAME, token
        if auth.token is not None:
            return auth.username, auth.token.resolve()
        return None

    async def api_token(self, repo: RepositoryConfig) -> SecretStr | None:
        """A token for the host's REST API (commit statuses), or None: for the notifier."""
        found = await self.basic_auth(repo)
        return found[1] if found is not None else None

    def serves_api(self, repo: RepositoryConfig, provider: str, api_url: str) -> bool:
        """Whether the repository's credentials are meant for `provider`'s API at `api_url`
        (the rule is `schemas.statusauth.host_serves`, which `gitops config check` applies
        too)."""
        return host_serves(repo, provider, api_url)

    def renew(self, repo: RepositoryConfig) -> bool:
        """After the host refused our token: whether a freshly minted one may be accepted."""
        auth = repo.auth
        if auth is None or auth.github_app is None:
            return False
        return self.tokens.invalidate(auth.github_app)
