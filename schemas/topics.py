"""Topic names, derived from one prefix so that several installations can share a broker."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """The topics of one installation."""

    prefix: str = "gitops"

    @property
    def push_events(self) -> str:
        return f"{self.prefix}.push-events"

    @property
    def sync_requests(self) -> str:
        return f"{self.prefix}.sync-requests"

    @property
    def sync_events(self) -> str:
        return f"{self.prefix}.sync-events"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}.sync-requests.dlq"

    @property
    def app_status(self) -> str:
        """Compacted: the latest `gitops.app.status` of each app (`docs/lifecycle.md`)."""
        return f"{self.prefix}.app-status"

    @property
    def generated_apps(self) -> str:
        """Compacted: the current definition of every app an app set generated, by app name."""
        return f"{self.prefix}.generated-apps"

    def all(self) -> tuple[str, ...]:
        return (
            self.push_events,
            self.sync_requests,
            self.sync_events,
            self.dead_letters,
            self.app_status,
            self.generated_apps,
        )
