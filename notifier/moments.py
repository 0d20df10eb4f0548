"""Moments: the events rules can match, reduced to what happened to which app at which commit.

A sync request is the `requested` moment (its own id is the request id); an outcome is
`succeeded`, `failed` or `skipped` (answering the request named by `request_id`); drift is
`drift`. Push events and the notifier's own `gitops.notification.failed` are no moments,
so a failed notification never notifies about itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.events import (
    AnyEvent,
    DriftDetected,
    SyncFailed,
    SyncRequested,
    SyncSkipped,
    SyncSucceeded,
)

MomentKind = Literal["requested", "succeeded", "failed", "skipped", "drift"]
MomentEvent = SyncRequested | SyncSucceeded | SyncFailed | SyncSkipped | DriftDetected

_OUTCOMES: dict[str, MomentKind] = {
    "gitops.sync.succeeded": "succeeded",
    "gitops.sync.failed": "failed",
    "gitops.sync.skipped": "skipped",
}


@dataclass(frozen=True)
class Moment:
    kind: MomentKind
    app: str
    commit: str | None
    event: MomentEvent
    request_id: str | None
    """The request this moment is (`requested`) or answers (outcomes); None for drift."""

    @property
    def final(self) -> bool:
        """An outcome: the last word on its request."""
        return self.kind in ("succeeded", "failed", "skipped")


def moment_of(event: AnyEvent) -> Moment | None:
    if isinstance(event, SyncRequested):
        data = event.data
        return Moment("requested", data.app, data.commit, event, event.id)
    if isinstance(event, SyncSucceeded | SyncFailed | SyncSkipped):
        result = event.data
        kind = _OUTCOMES[event.type]
        return Moment(kind, result.app, result.commit, event, result.request_id)
    if isinstance(event, DriftDetected):
        drift = event.data
        return Moment("drift", drift.app, drift.commit, event, None)
    return None
