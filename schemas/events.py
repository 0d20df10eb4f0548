"""CloudEvents 1.0 (structured JSON) envelopes for every message on every topic.

Each event type is its own model with a literal `type`, so one `TypeAdapter` parses
any message and JSON Schema files can be exported per type.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.config import AppConfig
from schemas.types import AppName, CommitSha, DeliveryId

PUSH_RECEIVED = "gitops.push.received"
SYNC_REQUESTED = "gitops.sync.requested"
SYNC_SUCCEEDED = "gitops.sync.succeeded"
SYNC_FAILED = "gitops.sync.failed"
SYNC_SKIPPED = "gitops.sync.skipped"
DRIFT_DETECTED = "gitops.drift.detected"
APP_STATUS = "gitops.app.status"
APP_GENERATED = "gitops.app.generated"
APP_REMOVED = "gitops.app.removed"
APPSET_FAILED = "gitops.appset.failed"
NOTIFICATION_FAILED = "gitops.notification.failed"

Provider = Literal["github", "gitlab", "gitea", "bitbucket"]
SyncReason = Literal[
    "webhook",
    "poll",
    "manual",
    "drift",
    "removed",
    "dependency",
    "suspend",
    "resume",
    "rollback",
]
"""Why a request exists. `removed`: the app's directory or file left its app set's branch;
delete the app. `dependency`: a request that waited for its `depends_on` apps, asked
again once they were ready; `suspend`, `resume`, `rollback`: the operator's lifecycle
commands (`docs/lifecycle.md`)."""

COMMAND_REASONS: frozenset[str] = frozenset({"suspend", "resume", "rollback"})
"""Requests that change an app's lifecycle: never collapsed into a newer request."""
ObjectAction = Literal["created", "configured", "unchanged", "pruned", "orphaned", "failed"]
"""`orphaned`: left in the cluster, no longer owned by any app (its set does not prune)."""
Health = Literal["healthy", "progressing", "degraded"]
SyncPhase = Literal["pre-sync", "sync", "post-sync", "sync-failed"]


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PushReceivedData(_Value):
    """A verified push, normalised across providers."""

    provider: Provider
    delivery_id: DeliveryId
    repo_url: str
    """Normalised URL of the registered repository the payload selected."""
    repositories: list[str] = Field(default_factory=list)
    """Names of the registered repositories with that URL."""
    ref: str
    before: CommitSha | None = None
    after: CommitSha | None = None
    created: bool = False
    deleted: bool = False
    forced: bool = False
    changed_paths: list[str] | None = None
    """Files added, modified or removed by the push; null when the payload's list is incomplete."""
    commit_count: int | None = None
    pusher: str | None = None
    apps: list[AppName] = Field(default_factory=list)
    """Apps a sync request was published for."""


class SyncRequestedData(_Value):
    """Ask the owner of an app to make its cluster match a commit."""

    app: AppName
    repo_url: str
    branch: str
    commit: CommitSha | None = None
    """The commit to apply; null means the branch head at fetch time."""
    before: CommitSha | None = None
    """The commit the push replaced, if known: lets the syncer skip apps whose path is unchanged."""
    reason: SyncReason
    delivery_id: DeliveryId | None = None
    note: str | None = None
    """The operator's words for a `suspend` (`gitops suspend --reason`)."""
    force: bool = False
    """A `manual` request that applies even though the app is suspended (`--force`)."""


class Refusal(_Value):
    """The API server's RBAC refusal of one request, as its 403 answer states it."""

    account: str
    """The identity that was refused, e.g. `system:serviceaccount:team-a:deployer`."""
    verb: str
    """`patch`, `create`, `delete`, `get`, `list`, `impersonate`..."""
    resource: str
    """The resource, with its API group when it has one: `deployments.apps`, `configmaps`."""
    namespace: str | None = None
    """The namespace of the request; null at the cluster scope."""


class ObjectResult(_Value):
    """What happened to one object during a sync."""

    api_version: str
    kind: str
    namespace: str | None = None
    name: str
    action: ObjectAction
    error: str | None = None
    refused: Refusal | None = None
    """Set when the error is an RBAC refusal of the account the app acts as."""
    phase: SyncPhase | None = None
    """When in the sync it happened: `sync` for app objects, a hook's phase for a hook."""
    wave: int | None = None
    """The object's `gitops.dev/sync-wave` (app objects and hooks; none for pruned ones)."""


class SyncResultData(_Value):
    """The outcome of one sync request (or of several collapsed into one)."""

    app: AppName
    cluster: str
    commit: CommitSha | None = None
    reason: SyncReason | None = None
    delivery_id: DeliveryId | None = None
    request_id: str | None = None
    """The CloudEvent id of the request this outcome answers."""
    objects: list[ObjectResult] = Field(default_factory=list)
    health: Health | None = None
    duration_ms: int = 0
    error: str | None = None
    """Why the sync failed or was skipped, in words a user can act on."""


class DriftedObject(_Value):
    """A live object that no longer matches Git."""

    api_version: str
    kind: str
    namespace: str | None = None
    name: str
    state: Literal["missing", "changed"]
    fields: list[str] = Field(default_factory=list)
    """Dotted paths of the fields that differ, e.g. `spec.replicas`."""


class DriftDetectedData(_Value):
    app: AppName
    cluster: str
    commit: CommitSha | None = None
    objects: list[DriftedObject]
    self_heal: bool


class Hold(_Value):
    """Why an app is suspended: it applies nothing until `gitops resume`."""

    reason: str
    """`rollback to <sha>` for a rollback, otherwise the operator's text or `no reason given`."""
    commit: CommitSha | None = None
    """The commit a rollback pinned the app to; null for a plain suspend."""
    since: datetime


class AppStatusData(_Value):
    """Where one app stands, kept by the syncer that owns it (latest per app on a
    compacted topic): what every syncer reads to decide whether an app's dependents may
    sync, and what `gitops apps` shows."""

    app: AppName
    cluster: str
    commit: CommitSha | None = None
    """The commit the cluster is at for this app (last applied, or found unchanged)."""
    ready: bool = False
    """The last sync of `commit` succeeded and the app was healthy."""
    hold: Hold | None = None
    waiting_for: dict[AppName, CommitSha | None] = Field(default_factory=dict)
    """Dependencies the app's last request was skipped for, each with the commit it was
    ready at that is not its branch head (null: it was not ready); the app is asked again
    once each is ready at another commit."""
    waiting: SyncRequestedData | None = None
    """That request, asked again (reason `dependency`) once they are ready."""


class AppDefinitionData(_Value):
    """An app an app set generated (or removed), as its set's owner read it from one commit.

    Published on the compacted `<prefix>.generated-apps` topic keyed by the app name; the
    latest record of each key is the app's current definition, which every syncer and the
    receiver read so they serve the same apps without reading the repository themselves.
    """

    app: AppName
    app_set: str
    """The key of the set under `app_sets:` that generated the app."""
    commit: CommitSha
    """The commit of the set's branch the definition was read from."""
    source: str
    """The directory or file of that commit the app was generated from."""
    repo_url: str
    """The repository URL as configured (no credentials)."""
    settings: AppConfig
    """The app's settings, exactly as a configured app's under `apps:`."""
    prune: bool = False
    """On a removal: whether the app's objects are deleted (the set's `prune`)."""


class AppSetProblemData(_Value):
    """Why an app set could not generate some of its apps at a commit."""

    app_set: str
    repo_url: str
    branch: str
    commit: CommitSha | None = None
    error: str
    """Every problem, one per line, naming the file, the template key or both sources of a
    name clash."""


NotificationMoment = Literal["requested", "succeeded", "failed", "skipped", "drift"]


class NotificationFailedData(_Value):
    """A notification the notifier gave up on: which rule, about what, and why (no secrets)."""

    rule: str
    """The `name` of the notification rule."""
    provider: str
    app: AppName
    commit: CommitSha | None = None
    outcome: NotificationMoment
    """The moment the notification was about (`failed` for a `gitops.sync.failed` event...)."""
    event_id: str
    """The CloudEvent id of the event the notification was about."""
    attempts: int
    status: int | None = None
    """The provider's last HTTP status; null when no answer came (network error, timeout)."""
    error: str
    """Why it was given up, with the provider's answer shortened; never a token or URL secret."""


D = TypeVar("D", bound=BaseModel)


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class PushReceived(_Envelope):
    type: Literal["gitops.push.received"] = "gitops.push.received"
    data: PushReceivedData


class SyncRequested(_Envelope):
    type: Literal["gitops.sync.requested"] = "gitops.sync.requested"
    data: SyncRequestedData


class SyncSucceeded(_Envelope):
    type: Literal["gitops.sync.succeeded"] = "gitops.sync.succeeded"
    data: SyncResultData


class SyncFailed(_Envelope):
    type: Literal["gitops.sync.failed"] = "gitops.sync.failed"
    data: SyncResultData


class SyncSkipped(_Envelope):
    type: Literal["gitops.sync.skipped"] = "gitops.sync.skipped"
    data: SyncResultData


class DriftDetected(_Envelope):
    type: Literal["gitops.drift.detected"] = "gitops.drift.detected"
    data: DriftDetectedData


class AppStatus(_Envelope):
    type: Literal["gitops.app.status"] = "gitops.app.status"
    data: AppStatusData


class AppGenerated(_Envelope):
    type: Literal["gitops.app.generated"] = "gitops.app.generated"
    data: AppDefinitionData


class AppRemoved(_Envelope):
    type: Literal["gitops.app.removed"] = "gitops.app.removed"
    data: AppDefinitionData


class AppSetFailed(_Envelope):
    type: Literal["gitops.appset.failed"] = "gitops.appset.failed"
    data: AppSetProblemData


class NotificationFailed(_Envelope):
    type: Literal["gitops.notification.failed"] = "gitops.notification.failed"
    data: NotificationFailedData


class DeadLetter(SyncRequested):
    """A sync request that kept failing: the original request plus the final error.

    `dlqerror` and `dlqattempts` are CloudEvents extension attributes.
    """

    dlqerror: str
    dlqattempts: int


SyncOutcome = SyncSucceeded | SyncFailed | SyncSkipped

AnyEvent = Annotated[
    PushReceived
    | SyncRequested
    | SyncSucceeded
    | SyncFailed
    | SyncSkipped
    | DriftDetected
    | AppStatus
    | AppGenerated
    | AppRemoved
    | AppSetFailed
    | NotificationFailed,
    Field(discriminator="type"),
]

_ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse_event(raw: bytes | str) -> AnyEvent:
    """Parse any message of our topics (except the DLQ) into its typed model."""
    return _ANY_EVENT.validate_json(raw)


def parse_dead_letter(raw: bytes | str) -> DeadLetter:
    return DeadLetter.model_validate_json(raw)


EVENT_MODELS: dict[str, type[_Envelope]] = {
    PUSH_RECEIVED: PushReceived,
    SYNC_REQUESTED: SyncRequested,
    SYNC_SUCCEEDED: SyncSucceeded,
    SYNC_FAILED: SyncFailed,
    SYNC_SKIPPED: SyncSkipped,
    DRIFT_DETECTED: DriftDetected,
    APP_STATUS: AppStatus,
    APP_GENERATED: AppGenerated,
    APP_REMOVED: AppRemoved,
    APPSET_FAILED: AppSetFailed,
    NOTIFICATION_FAILED: NotificationFailed,
}
