"""Which token a commit status carries: the rule's own, or the app's repository credential.

Issue 20's promise: the credentials that poll and fetch a repository also set its
commit statuses when the provider is the same host, so a GitHub App installed for the
syncer needs no second, long-lived token for the notifier. A rule's `token` always wins;
without one, the app's repository `auth` is used only when `schemas.statusauth.
host_serves` says it is meant for the rule's API, so a repository credential never goes
to another host. `gitops config check` refuses rules no credential serves for the apps
it knows; what is left (an app this notifier's configuration does not have) ends here,
as a permanent error naming the rule. Installation tokens come from `credentials` (minted,
cached, renewed after a 401).
"""

from __future__ import annotations

from dataclasses import dataclass

from credentials import GitHubAppError, HostCredentials
from notifier.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from notifier.providers import api_base, secret_value
from schemas.config import GitopsConfig, NotificationRule, RepositoryConfig


@dataclass(frozen=True)
class StatusToken:
    """The token to send, and the repository it came from (None: the rule's own)."""

    value: str
    repository: RepositoryConfig | None = None


class StatusTokens:
    """Finds the token of each commit-status request; built once per notifier."""

    def __init__(self, config: GitopsConfig, credentials: HostCredentials) -> None:
        self._config = config
        self._credentials = credentials

    def _repository(self, app: str) -> tuple[str, RepositoryConfig | None]:
        app_config = self._config.apps.get(app)
        if app_config is None:
            return "", None
        return app_config.repo, self._config.repositories.get(app_config.repo)

    async def token(self, rule: NotificationRule, app: str) -> StatusToken:
        """The rule's token, else the app's repository credential for the rule's host."""
        if rule.token is not None:
            return StatusToken(secret_value(rule.token))
        api = api_base(rule)
        name, repo = self._repository(app)
        if repo is None:
            raise PermanentDeliveryError(
                f"rule {rule.name} has no 'token' and app {app} has no repository in this"
                " notifier's configuration to borrow a credential from; set 'token' on the rule"
            )
        if not self._credentials.serves_api(repo, rule.provider, api):
            raise PermanentDeliveryError(
                f"rule {rule.name} has no 'token' and repository '{name}' of app {app} has no"
                f" credential for {rule.provider} at {api} (a repository credential is only"
                " sent to its own host); set 'token' on the rule"
            )
        try:
            found = await self._credentials.api_token(repo)
        except GitHubAppError as exc:
            error: type[DeliveryError] = (
                TransientDeliveryError if exc.transient else PermanentDeliveryError
            )
            raise error(f"rule {rule.name}, repository '{name}': {exc}") from None
        if found is None:  # host_serves said there is one; a race with nothing
            raise PermanentDeliveryError(f"repository '{name}' has no API token")
        return StatusToken(found.get_secret_value(), repo)

    def renew(self, token: StatusToken) -> bool:
        """After a 401: whether a fresh token may pass (a GitHub App's can be minted again)."""
        return token.repository is not None and self._credentials.renew(token.repository)
