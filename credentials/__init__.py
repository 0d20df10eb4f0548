"""Credentials for git hosts, shared by every part that talks to one.

A repository's `auth` is used for more than fetching: the syncer lists branch heads and
fetches with it, and the notifier posts commit statuses to the same host. Minting a
GitHub App installation token (a JWT exchanged for an hour-long token) belongs to
neither, so it lives here, below both, and each process builds one `HostCredentials`.
"""

from credentials.githubapp import GitHubAppError, InstallationTokens, app_jwt
from credentials.hosts import HostCredentials

__all__ = ["GitHubAppError", "HostCredentials", "InstallationTokens", "app_jwt"]
