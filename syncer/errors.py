"""Sync errors that carry their retry policy, so the worker never has to guess.

`TransientSyncError(delay=...)` means "the world may fix itself: run the sync again later"
(git host unreachable, a CRD not yet established, resourceVersion races);
`RetriesExhausted` means one request's retries are spent (`syncer.retrying`).
`PermanentSyncError` means "only a new commit or a config change can fix this" (invalid
manifests, forbidden objects, unsafe paths): the request fails at once. Library errors
(kubernetes_asyncio, dulwich, aiokafka) are converted into these in exactly one module each.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.events import ObjectResult, Refusal


@dataclass(frozen=True)
class ObjectError:
    """Why one object of a commit could not be validated, applied or pruned."""

    api_version: str
    kind: str
    namespace: str | None
    name: str
    message: str
    refusal: Refusal | None = None
    """The API server's RBAC refusal, when that is why (the account, verb, resource)."""

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}: {self.message}"


class SyncError(Exception):
    """Base of every error a sync reports; its text is shown to users as is."""

    def __init__(self, message: str, *, objects: list[ObjectError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.objects: list[ObjectError] = list(objects or [])
        self.commit: str | None = None
        """The commit being synced, once known (set by the worker for the report)."""
        self.results: list[ObjectResult] = []
        """The change set of a sync that failed after it started writing."""


class TransientSyncError(SyncError):
    """Worth running the whole sync again after `delay` seconds, up to `syncer.max_attempts`."""

    def __init__(
        self, message: str, *, delay: float = 1.0, objects: list[ObjectError] | None = None
    ) -> None:
        super().__init__(message, objects=objects)
        self.delay = delay


class RetriesExhausted(SyncError):
    """A transient failure outlasted its retries (`syncer.retrying`): the sync fails now,
    dead-lettered, and the next push, poll or drift check tries again."""

    def __init__(
        self, message: str, *, attempts: int, objects: list[ObjectError] | None = None
    ) -> None:
        super().__init__(message, objects=objects)
        self.attempts = attempts


class PermanentSyncError(SyncError):
    """Retrying cannot help; the sync fails at once with this text."""


class ManifestError(PermanentSyncError):
    """A manifest file cannot be loaded safely; the message names the file and document."""


class PolicyError(PermanentSyncError):
    """An object breaks the app's policy (namespace, cluster scope or kind rules)."""
