"""How the git cache reaches each repository: its `auth` turned into a mirror's `Access`.

One object per git cache, so every use of a repository (branch-head polls, fetches,
and through the cache, commit verification) goes out with the same credentials: a
token or a minted GitHub App installation token over HTTPS (with the repository's CA
bundle and proxy), or the SSH key and pinned host keys written by `syncer.gitssh`.
"""

from __future__ import annotations

import asyncio

from credentials import GitHubAppError, HostCredentials
from schemas.config import RepositoryConfig
from syncer.giterrors import GitError, PermanentGitError, TransientGitError, safe_url
from syncer.gitmirror import NO_ACCESS, Access, Credentials
from syncer.gitssh import SshIdentities, SshIdentity


class GitAccess:
    """Builds each repository's `Access`; owns the SSH key files and, unless given, the
    host credentials (closing it removes both)."""

    def __init__(self, credentials: HostCredentials | None = None) -> None:
        self._owns_credentials = credentials is None
        self.credentials = credentials if credentials is not None else HostCredentials()
        self._identities = SshIdentities()

    async def access(self, repo: RepositoryConfig) -> Access:
        """What a mirror of `repo` needs now; a GitHub App token is minted when due."""
        auth = repo.auth
        if auth is None:
            return NO_ACCESS
        if auth.ssh is not None:
            identity = await asyncio.to_thread(self._identity, repo)
            return Access(ssh=identity)
        try:
            basic = await self.credentials.basic_auth(repo)
        except GitHubAppError as exc:
            kind: type[GitError] = TransientGitError if exc.transient else PermanentGitError
            raise kind(f"cannot get a token for {safe_url(repo.url)}: {exc}") from None
        except ValueError as exc:
            raise PermanentGitError(
                f"cannot read the token for {safe_url(repo.url)}: {exc}"
            ) from None
        credentials = Credentials(basic[0], basic[1].get_secret_value()) if basic else None
        return Access(
            credentials=credentials,
            ca_bundle=auth.ca_bundle.file if auth.ca_bundle else None,
            proxy=auth.proxy,
        )

    def _identity(self, repo: RepositoryConfig) -> SshIdentity:
        assert repo.auth is not None and repo.auth.ssh is not None  # noqa: S101 - checked above
        try:
            return self._identities.identity(repo.auth.ssh)
        except ValueError as exc:
            raise PermanentGitError(
                f"cannot read the SSH key for {safe_url(repo.url)}: {exc}"
            ) from None

    def renew(self, repo: RepositoryConfig) -> bool:
        """After a refusal: whether asking again with fresh credentials may succeed."""
        return self.credentials.renew(repo)

    async def close(self) -> None:
        """Remove the key files and close the token session; safe to call more than once."""
        await asyncio.to_thread(self._identities.close)
        if self._owns_credentials:
            await self.credentials.close()
